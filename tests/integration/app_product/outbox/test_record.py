"""The outbox: every catalog change records its events in the same transaction, and only then."""

import asyncio

import asyncpg
import pytest

from shared.events.envelope import decode


@pytest.fixture
async def outbox(catalog_db_url):
    conn = await asyncpg.connect(catalog_db_url)

    async def events(kind: str, aggregate_id: int):
        rows = await conn.fetch(
            "SELECT payload::text AS payload FROM outbox"
            " WHERE event_type LIKE $1 || '.%' AND aggregate_id = $2 ORDER BY id",
            kind,
            aggregate_id,
        )
        return [decode(row["payload"]) for row in rows]

    yield events
    await conn.close()


async def test_a_product_lifecycle_records_one_event_per_change(catalog, admin, new_category, outbox):
    category = await new_category()
    created = (
        await catalog.post(
            "/api/products",
            json={
                "sku": f"EV-{category['id']}",
                "name": "Evented",
                "price": "5.00",
                "category_id": category["id"],
            },
            headers=admin,
        )
    ).json()
    url = f"/api/products/{created['id']}"
    await catalog.patch(url, json={"price": "6.50", "stock": 3, "version": 1}, headers=admin)
    await catalog.delete(url, headers=admin)
    events = await outbox("product", created["id"])
    assert [(e.type, e.version) for e in events] == [
        ("product.created", 1),
        ("product.updated", 2),
        ("product.deleted", 3),
    ]
    assert events[0].data is not None and events[0].data["category_name"] == category["name"]
    assert events[1].data is not None and (events[1].data["price"], events[1].data["stock"]) == ("6.50", 3)
    assert events[1].changed == ["price", "stock"]
    assert events[2].data is None
    assert len({e.id for e in events}) == 3 and all(e.schema_version == 1 for e in events)


async def test_a_rename_records_the_category_and_each_product(
    catalog, admin, new_category, new_product, outbox
):
    category = await new_category()
    products = [await new_product(category_id=category["id"]) for _ in range(2)]
    renamed = f"{category['name']} renamed"
    await catalog.patch(
        f"/api/categories/{category['id']}", json={"name": renamed, "version": 1}, headers=admin
    )
    assert [(e.type, e.version, e.changed) for e in await outbox("category", category["id"])] == [
        ("category.created", 1, []),
        ("category.updated", 2, ["name"]),
    ]
    for product in products:
        updated = (await outbox("product", product["id"]))[-1]
        assert (updated.type, updated.version, updated.changed) == ("product.updated", 2, ["category_name"])
        assert updated.data is not None and updated.data["category_name"] == renamed
    await catalog.patch(
        f"/api/products/{products[0]['id']}", json={"category_id": None, "version": 2}, headers=admin
    )
    await catalog.delete(f"/api/products/{products[1]['id']}", headers=admin)
    await catalog.delete(f"/api/products/{products[0]['id']}", headers=admin)
    assert (await catalog.delete(f"/api/categories/{category['id']}", headers=admin)).status_code == 204
    assert (await outbox("category", category["id"]))[-1].type == "category.deleted"


async def test_refused_writes_record_nothing(catalog, admin, new_product, outbox):
    product = await new_product()
    url = f"/api/products/{product['id']}"
    before = await outbox("product", product["id"])
    assert (await catalog.patch(url, json={"price": "1.00", "version": 9}, headers=admin)).status_code == 409
    assert (
        await catalog.patch(url, json={"category_id": 987654321, "version": 1}, headers=admin)
    ).status_code == 422
    duplicate = await catalog.post(
        "/api/products", json={"sku": product["sku"], "name": "Dup", "price": "1.00"}, headers=admin
    )
    assert duplicate.status_code == 409
    assert await outbox("product", product["id"]) == before


async def test_a_committed_change_notifies_the_relays_channel(catalog, admin, catalog_db_url, unique):
    listener = await asyncpg.connect(catalog_db_url)
    woken = asyncio.Event()
    await listener.add_listener("storefront_outbox", lambda *_: woken.set())
    try:
        await catalog.post("/api/categories", json={"name": unique("Notify")}, headers=admin)
        await asyncio.wait_for(woken.wait(), timeout=5)
    finally:
        await listener.close()
