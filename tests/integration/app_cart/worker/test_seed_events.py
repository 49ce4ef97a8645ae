"""The seed's `category.updated`, posted to /internal/events by a producer still on the seed's
contract, applied by the worker with a version taken from the catalog (a real catalog process):
idempotent, order-safe against our own events, and an unknown seed type parked, not lost."""

import asyncio
import uuid
from decimal import Decimal

import httpx
import pytest

from app_cart.adapters.catalog_client import catalog_client
from app_cart.api.schemas import incoming_event
from app_cart.settings import CartSettings
from app_cart.tools.backfill_categories import Backfilled, backfill
from app_cart.worker.run import cart_worker
from app_product.outbox.relay import Relay
from app_product.settings import CatalogSettings
from shared.config import load_settings
from shared.events.dead_letters import DeadLetters
from shared.events.envelope import encode, stream_fields
from shared.events.publish import StreamAppender
from shared.keys import CART_GROUP, keys_for
from shared.storage.migrations import SQL_ROOT, migrate
from shared.storage.postgres import create_database
from tests.support.env import make_token, service_env
from tests.support.processes import running_catalog
from tests.support.redis_mode import client as redis_client
from tests.support.waits import until

ITEMS = (
    "SELECT 'cart' AS kind, category_id, category_name, product_version FROM cart_items"
    " UNION ALL SELECT 'wishlist', category_id, category_name, product_version FROM wishlist_items"
)
ADMIN = {"Authorization": f"Bearer {make_token('seed-admin', roles=('admin',))}"}


def seed_event(
    category_id: int, name: str, timestamp: float = 18034.625, event_type: str = "category.updated"
):
    payload = {"category_id": category_id, "name": name, "is_active": True}
    return incoming_event({"event_type": event_type, "payload": payload, "timestamp": timestamp})


@pytest.fixture
async def shop(postgres, redis_server):
    """A catalog process with a category of two products, held in a cart and a wishlist as the
    relay last brought them (version 1); the cart's worker in-process, reading that catalog."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    catalog_db, cart_db = (postgres.url(f"seed_{uuid.uuid4().hex[:10]}") for _ in range(2))
    await migrate(catalog_db, SQL_ROOT / "catalog")
    await migrate(cart_db, SQL_ROOT / "cart")
    with running_catalog(catalog_db, redis_server.url, prefix=prefix) as (catalog_url, _):
        env = service_env(
            cart_db,
            redis_server.url,
            REDIS_KEY_PREFIX=prefix,
            CATALOG_URL=catalog_url,
            WORKER_BLOCK_SECONDS="0.1",
            WORKER_RETRY_BASE_SECONDS="0.05",
            WORKER_MAX_DELIVERIES="2",
        )
        settings = load_settings(CartSettings, env)
        catalog_settings = load_settings(
            CatalogSettings, service_env(catalog_db, redis_server.url, REDIS_KEY_PREFIX=prefix)
        )
        db, redis = create_database(settings), redis_client(redis_server.url)
        await db.connect()
        client = catalog_client(settings, redis)
        async with httpx.AsyncClient(base_url=catalog_url, headers=ADMIN) as http:
            # Another category and product first, so that no id or version of the category
            # under test is 1 by chance (a row's fields mixed up would go unnoticed).
            shirts = (await http.post("/api/categories", json={"name": "Shirts"})).json()
            shirt = {"sku": "S-1", "name": "Shirt", "price": "20.00", "category_id": shirts["id"]}
            assert (await http.post("/api/products", json=shirt)).status_code == 201
            category = (await http.post("/api/categories", json={"name": "Jackets"})).json()
            products = [
                (
                    await http.post(
                        "/api/products",
                        json={
                            "sku": f"J-{n}",
                            "name": f"Jacket {n}",
                            "price": "50.00",
                            "category_id": category["id"],
                        },
                    )
                ).json()
                for n in (1, 2)
            ]

            class Shop:
                catalog_http = http
                catalog = client
                cart_db = db
                keys = keys_for(settings)
                worker = cart_worker(settings, db, redis, "seed-worker", client)
                category_id = category["id"]
                other_category_id = shirts["id"]
                product_ids = [p["id"] for p in products]

                @staticmethod
                async def rename(name: str) -> None:
                    current = (await http.get(f"/api/categories/{category['id']}")).json()
                    response = await http.patch(
                        f"/api/categories/{category['id']}",
                        json={"name": name, "version": current["version"]},
                    )
                    assert response.status_code == 200, response.text

                @staticmethod
                async def relay() -> None:
                    await Relay(catalog_settings, redis).run(asyncio.Event(), burst=True)

                @staticmethod
                async def post(*events) -> None:
                    """What POST /internal/events appends."""
                    appender = StreamAppender(redis, Shop.keys.catalog_events(), Shop.keys.stream_epoch())
                    for event in events:
                        await appender.append_one(
                            stream_fields(
                                str(event.id),
                                event.type,
                                event.aggregate_id,
                                event.version,
                                encode(event).decode(),
                            )
                        )

                @staticmethod
                async def work() -> None:
                    await Shop.worker.run(asyncio.Event(), burst=True)

                @staticmethod
                async def items() -> set[tuple[str, int | None, str | None, int]]:
                    rows = await db.fetch_all(ITEMS)
                    return {
                        (r["kind"], r["category_id"], r["category_name"], r["product_version"]) for r in rows
                    }

            await hold(db, Shop.product_ids, Shop.category_id)
            try:
                yield Shop
            finally:
                await client.aclose()
                await db.disconnect()
                await redis.aclose()


async def hold(db, product_ids: list[int], category_id: int) -> None:
    cart_id = await db.fetch_val("INSERT INTO carts (user_id) VALUES ('seed-shopper') RETURNING id")
    wishlist_id = await db.fetch_val("INSERT INTO wishlists (user_id) VALUES ('seed-shopper') RETURNING id")
    for product_id in product_ids:
        snapshot = {"p": product_id, "c": category_id, "price": Decimal("50.00")}
        await db.execute(
            "INSERT INTO cart_items (cart_id, product_id, quantity, product_name, category_name, category_id,"
            " price_when_added, current_price, is_available, product_version)"
            " VALUES (:cart, :p, 1, 'Jacket', 'Jackets', :c, :price, :price, true, 1)",
            {"cart": cart_id, **snapshot},
        )
        await db.execute(
            "INSERT INTO wishlist_items (wishlist_id, product_id, product_name, category_name, category_id,"
            " price_when_added, current_price, is_available, product_version)"
            " VALUES (:wishlist, :p, 'Jacket', 'Jackets', :c, :price, :price, true, 1)",
            {"wishlist": wishlist_id, **snapshot},
        )


async def test_a_seed_rename_reaches_every_item_and_outlives_an_older_rename_of_ours(shop):
    # Two renames in the catalog; their events wait in the outbox (the relay is not running).
    await shop.rename("Coats")
    await shop.rename("Outerwear")
    await shop.post(seed_event(shop.category_id, "Outerwear"))
    await shop.work()
    newest = {(kind, shop.category_id, "Outerwear", 3) for kind in ("cart", "wishlist")}
    assert await shop.items() == newest  # every item, at the catalog's version
    # Posted again (a producer's retry): the same id, and nothing changes.
    await shop.post(seed_event(shop.category_id, "Outerwear"))
    await shop.work()
    assert await shop.items() == newest
    # Our own events now arrive, the older rename (version 2, "Coats") among them: ignored.
    await shop.relay()
    await shop.work()
    assert await shop.items() == newest
    assert shop.worker.failed == 0
    # A rename after it is newer, and wins.
    await shop.rename("Parkas")
    await shop.relay()
    await shop.work()
    assert await shop.items() == {(kind, shop.category_id, "Parkas", 4) for kind in ("cart", "wishlist")}


async def test_a_late_seed_rename_cannot_roll_items_back(shop, caplog):
    await shop.rename("Coats")
    await shop.relay()
    await shop.work()
    await shop.post(seed_event(shop.category_id, "Jackets", timestamp=17000.0))  # the name before
    await shop.work()
    assert await shop.items() == {(kind, shop.category_id, "Coats", 2) for kind in ("cart", "wishlist")}
    assert any("the catalog calls it ['Coats']" in r.getMessage() for r in caplog.records)


async def test_a_seed_event_of_an_unknown_type_is_parked_with_its_payload(shop):
    event = seed_event(shop.category_id, "x", event_type="order.created")
    await shop.post(event)
    stop = asyncio.Event()
    running = asyncio.create_task(shop.worker.run(stop))
    dead = DeadLetters(shop.worker.redis, shop.keys, CART_GROUP)
    try:
        await until(lambda: _one_dead(dead), seconds=15)
    finally:
        stop.set()
        await running
    [record] = await dead.list()
    assert record["type"] == "seed.order.created"
    assert "no handler for event type 'seed.order.created'" in record["error"]
    assert encode(event).decode() == record["event"]  # the seed's payload kept, ready to replay
    assert await shop.items() == {(kind, shop.category_id, "Jackets", 1) for kind in ("cart", "wishlist")}


async def _one_dead(dead: DeadLetters) -> bool:
    return await dead.count() == 1


async def test_the_backfill_records_the_category_of_older_items_and_is_safe_to_rerun(shop):
    """Items written before items kept their category: one product as new as the catalog (only
    its category is filled in), one behind it (its items get the catalog's state), and one the
    catalog has no category for (nothing to fill in)."""
    for table in ("cart_items", "wishlist_items"):
        await shop.cart_db.execute(f"UPDATE {table} SET category_id = NULL")
    first, second = shop.product_ids
    response = await shop.catalog_http.patch(f"/api/products/{second}", json={"price": "45.00", "version": 1})
    assert response.status_code == 200, response.text
    loose = await shop.catalog_http.post(
        "/api/products", json={"sku": "L-1", "name": "Loose", "price": "5.00"}
    )
    await shop.cart_db.execute(
        "INSERT INTO cart_items (cart_id, product_id, quantity, product_name, price_when_added,"
        " current_price, is_available, product_version)"
        " SELECT id, :p, 1, 'Loose', 5, 5, true, 1 FROM carts",
        {"p": loose.json()["id"]},
    )
    done = await backfill(shop.cart_db, shop.catalog, page_size=1)
    assert done == Backfilled(products=3, refreshed=1, filled=2)
    rows = await shop.cart_db.fetch_all(
        "SELECT product_id, category_id, product_version, current_price FROM cart_items"
        " WHERE product_id = ANY(:ids)"
        " UNION ALL SELECT product_id, category_id, product_version, current_price FROM wishlist_items",
        {"ids": shop.product_ids},
    )
    assert sorted((r[0], r[1], r[2], str(r[3])) for r in rows) == [
        (first, shop.category_id, 1, "50.00"),
        (first, shop.category_id, 1, "50.00"),
        (second, shop.category_id, 2, "45.00"),
        (second, shop.category_id, 2, "45.00"),
    ]
    # Again: only the product without a category is asked for, and nothing is written.
    assert await backfill(shop.cart_db, shop.catalog, page_size=1) == Backfilled(1, 0, 0)
    # And a seed rename now finds them all.
    await shop.rename("Coats")
    await shop.post(seed_event(shop.category_id, "Coats"))
    await shop.work()
    held = {(category, name) for _, category, name, _ in await shop.items()}
    assert held == {(shop.category_id, "Coats"), (None, None)}  # the loose product has no category


async def test_a_seed_event_marks_a_deleted_product_gone_and_warns_only_about_names_it_knows(shop, caplog):
    first, second = shop.product_ids
    assert (await shop.catalog_http.delete(f"/api/products/{second}?version=1")).status_code == 204
    # The category of the deleted product, and a category no item holds (nothing to compare).
    await shop.post(seed_event(shop.category_id, "Jackets"), seed_event(shop.other_category_id, "Tops"))
    await shop.work()
    rows = await shop.cart_db.fetch_all(
        "SELECT product_id, is_available FROM cart_items"
        " UNION ALL SELECT product_id, is_available FROM wishlist_items"
    )
    assert sorted((r[0], r[1]) for r in rows) == [
        (first, True),
        (first, True),
        (second, False),
        (second, False),
    ]
    assert not any("calls it" in r.getMessage() for r in caplog.records)
