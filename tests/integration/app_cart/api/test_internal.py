"""The cart's internal routes: service credential, validation, and what they append or report."""

import uuid
from datetime import UTC, datetime

from shared.events.envelope import decode
from tests.support.env import as_user, make_token
from tests.support.redis_mode import client, test_keys

SERVICE = {"Authorization": f"Bearer {make_token('catalog-service', roles=('service',))}"}


def event_body(**overrides):
    return {
        "id": str(uuid.uuid4()),
        "type": "product.updated",
        "aggregate_id": 42,
        "version": 7,
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {
            "id": 42,
            "name": "Posted",
            "price": "1.00",
            "stock": 1,
            "is_active": True,
            "category_name": None,
        },
        "changed": ["price"],
        **overrides,
    }


async def test_posting_an_event_needs_the_service_role(cart):
    assert (await cart.post("/internal/events", json=event_body())).status_code == 401
    assert (
        await cart.post("/internal/events", json=event_body(), headers=as_user("shopper-x"))
    ).status_code == 403


async def test_a_posted_event_is_appended_to_the_stream(cart, cart_env, redis_server):
    body = event_body()
    response = await cart.post("/internal/events", json=body, headers=SERVICE)
    assert response.status_code == 202 and response.json()["accepted"] == body["id"]
    stream = test_keys(cart_env["REDIS_KEY_PREFIX"]).catalog_events()
    async with client(redis_server.url) as redis:
        [(_, fields)] = await redis.xrange(stream)
    assert (fields[b"type"], fields[b"version"], fields[b"event_id"]) == (
        b"product.updated",
        b"7",
        body["id"].encode(),
    )
    assert decode(fields[b"event"]).data == body["data"]


async def test_bad_events_are_refused_and_append_nothing(cart, cart_env, redis_server):
    for bad in (event_body(version="seven"), event_body(id="not-a-uuid"), {"type": "product.updated"}):
        response = await cart.post("/internal/events", json=bad, headers=SERVICE)
        assert response.status_code == 422, bad
    async with client(redis_server.url) as redis:
        assert await redis.xlen(test_keys(cart_env["REDIS_KEY_PREFIX"]).catalog_events()) == 0


async def test_pipeline_health_reports_for_monitoring(cart, cart_env):
    assert (await cart.get("/internal/health")).status_code == 401
    await cart.post("/internal/events", json=event_body(), headers=SERVICE)
    body = (await cart.get("/internal/health", headers=SERVICE)).json()
    counts = {"stream_length": 1, "lag": None, "pending": 0, "dead": 0}
    stream = body["partitions"][0]["stream"]
    assert body == {
        "status": "no live worker",
        "workers": 0,
        **counts,
        "partitions": [{"partition": 0, "stream": stream, **counts}],  # one, by default
    }
    assert stream == test_keys(cart_env["REDIS_KEY_PREFIX"]).catalog_events()


def seed_body(event_type="category.updated", **payload):
    """An event as the seed's product service sends it (its timestamp: an event loop's clock)."""
    return {
        "event_type": event_type,
        "payload": payload or {"category_id": 2, "name": "Jackets", "is_active": True},
        "timestamp": 18034.625,
    }


async def stream_entries(cart_env, redis_server) -> list[dict]:
    async with client(redis_server.url) as redis:
        return [
            fields
            for _, fields in await redis.xrange(test_keys(cart_env["REDIS_KEY_PREFIX"]).catalog_events())
        ]


async def test_a_seed_event_is_appended_in_our_envelope_with_an_id_from_its_content(
    cart, cart_env, redis_server
):
    first = await cart.post("/internal/events", json=seed_body(), headers=SERVICE)
    # The same event again (a producer's retry), its keys in another order: the same id.
    reordered = {"timestamp": 18034.625, "payload": {"is_active": True, "name": "Jackets", "category_id": 2}}
    again = await cart.post(
        "/internal/events", json={**reordered, "event_type": "category.updated"}, headers=SERVICE
    )
    later = await cart.post("/internal/events", json={**seed_body(), "timestamp": 18035.0}, headers=SERVICE)
    assert first.status_code == again.status_code == later.status_code == 202
    assert first.json()["accepted"] == again.json()["accepted"] != later.json()["accepted"]
    entries = await stream_entries(cart_env, redis_server)
    assert len(entries) == 3
    entry = entries[0]
    # What an operator reads with XRANGE: the seed's type, the category, no version of its own.
    assert (entry[b"type"], entry[b"aggregate_id"], entry[b"version"]) == (
        b"seed.category.updated",
        b"2",
        b"0",
    )
    assert entry[b"event_id"].decode() == first.json()["accepted"]
    event = decode(entry[b"event"])
    assert str(event.id) == first.json()["accepted"]
    assert event.data == seed_body()  # the seed's body as it came


async def test_a_seed_event_of_an_unknown_type_is_accepted_and_logged(cart, cart_env, redis_server, caplog):
    body = seed_body("order.created", order_id=7, total="12.00")
    response = await cart.post("/internal/events", json=body, headers=SERVICE)
    assert response.status_code == 202
    [entry] = await stream_entries(cart_env, redis_server)
    assert (entry[b"type"], entry[b"aggregate_id"]) == (b"seed.order.created", b"0")
    assert decode(entry[b"event"]).data == body
    assert any("'order.created'" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


async def test_a_body_of_neither_shape_is_a_422_naming_both(cart, cart_env, redis_server):
    for bad, field in (
        ({"kind": "category.updated", "body": {}}, "id"),
        (seed_body(category_id=2, name="Jackets"), "payload.is_active"),  # the seed always sent it
        (seed_body(category_id="two", name="Jackets", is_active=True), "payload.category_id"),
        ({**seed_body(), "timestamp": "yesterday"}, "timestamp"),
        ({**seed_body(), "event_type": ""}, "event_type"),
    ):
        response = await cart.post("/internal/events", json=bad, headers=SERVICE)
        assert response.status_code == 422, bad
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert "{id, type, aggregate_id, version, occurred_at" in problem["detail"], problem
        assert "{event_type, payload, timestamp}" in problem["detail"], problem
        assert [error["field"] for error in problem["errors"]] == [field], problem
    assert await stream_entries(cart_env, redis_server) == []


async def test_a_seed_event_needs_the_service_role(cart, cart_env, redis_server):
    assert (await cart.post("/internal/events", json=seed_body())).status_code == 401
    response = await cart.post("/internal/events", json=seed_body(), headers=as_user("shopper-x"))
    assert response.status_code == 403
    assert await stream_entries(cart_env, redis_server) == []
