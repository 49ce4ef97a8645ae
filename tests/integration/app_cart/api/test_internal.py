"""The cart's internal routes: service credential, validation, and what they append or report."""

import uuid
from datetime import UTC, datetime

from redis.asyncio import Redis

from shared.events.envelope import decode
from shared.keys import Keys
from tests.support.env import as_user, make_token

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
    stream = Keys(cart_env["REDIS_KEY_PREFIX"]).catalog_events()
    async with Redis.from_url(redis_server.url) as redis:
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
    async with Redis.from_url(redis_server.url) as redis:
        assert await redis.xlen(Keys(cart_env["REDIS_KEY_PREFIX"]).catalog_events()) == 0


async def test_pipeline_health_reports_for_monitoring(cart):
    assert (await cart.get("/internal/health")).status_code == 401
    await cart.post("/internal/events", json=event_body(), headers=SERVICE)
    body = (await cart.get("/internal/health", headers=SERVICE)).json()
    assert body == {
        "status": "no live worker",
        "workers": 0,
        "stream_length": 1,
        "lag": None,
        "pending": 0,
        "dead": 0,
    }
