"""The cart and the catalog as two real processes talking HTTP, as in production."""

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from tests.support.env import as_user, make_token
from tests.support.processes import new_prefix, prepare, running_cart, running_catalog, wait_until
from tests.support.redis_mode import sync_client, test_keys
from tests.support.waits import until

pytestmark = pytest.mark.e2e

METRICS_READER = {"Authorization": f"Bearer {make_token('metrics-reader', roles=('metrics',))}"}
FETCHES = "storefront_product_cache_catalog_fetches_total"
MISSES = 'storefront_product_cache_lookups_total{result="miss"}'
# Statements waiting for the products table (a catalog read held back by the test's lock).
WAITING_FOR_PRODUCTS = "SELECT count(*) FROM pg_locks WHERE relation = 'products'::regclass AND NOT granted"


async def counter(cart_url: str, series: str) -> int:
    """A counter of a cart process, from its /metrics."""
    async with httpx.AsyncClient(timeout=5) as client:
        metrics = await client.get(f"{cart_url}/metrics", headers=METRICS_READER)
    metrics.raise_for_status()
    [value] = [line.rsplit(" ", 1)[1] for line in metrics.text.splitlines() if line.startswith(f"{series} ")]
    return int(float(value))


def fresh_databases(postgres, redis_server) -> tuple[str, str]:
    """A migrated catalog database and a migrated cart database, new for this test."""
    catalog_db, cart_db = (postgres.url(f"e2e_{uuid.uuid4().hex[:8]}") for _ in range(2))
    prepare(catalog_db, redis_server.url, "catalog")
    prepare(cart_db, redis_server.url, "cart")
    return catalog_db, cart_db


def test_the_cart_reads_the_catalog_over_http_and_survives_it_going_down(postgres, redis_server):
    catalog_db, cart_db = fresh_databases(postgres, redis_server)
    prefix = new_prefix()
    admin = {"Authorization": f"Bearer {make_token('admin-1', roles=('admin',))}"}
    shopper = as_user("e2e-shopper")
    with (
        running_catalog(catalog_db, redis_server.url, prefix=prefix) as (catalog_url, catalog_process),
        # Cache entries go stale after 0.3 s, so the outage below shows stale-if-error.
        running_cart(cart_db, redis_server.url, catalog_url, prefix=prefix, CACHE_TTL_SECONDS="0.3") as (
            cart_url,
            _,
        ),
        httpx.Client(base_url=catalog_url, timeout=5) as catalog,
        httpx.Client(base_url=cart_url, timeout=5) as cart,
    ):
        product = catalog.post(
            "/api/products",
            json={"sku": "E2E-CART", "name": "Wire", "price": "4.25", "stock": 9},
            headers=admin,
        ).json()
        added = cart.post(
            "/api/cart/items", json={"product_id": product["id"], "quantity": 2}, headers=shopper
        )
        assert added.status_code == 200
        assert (added.json()["subtotal"], added.json()["items"][0]["name"]) == ("8.50", "Wire")

        catalog.patch(f"/api/products/{product['id']}", json={"price": "5.00", "version": 1}, headers=admin)
        item = cart.get("/api/cart", headers=shopper).json()["items"][0]
        assert (item["unit_price"], item["price_changed"]) == ("5.00", True)

        catalog_process.kill()
        catalog_process.wait(timeout=10)
        # Until the entry goes stale it is served fresh; then stale, with the last known price.
        wait_until(lambda: cart.get("/api/cart", headers=shopper).json()["stale"])
        stale = cart.get("/api/cart", headers=shopper).json()
        assert (stale["items"][0]["quantity"], stale["items"][0]["unit_price"]) == (2, "5.00")
        assert stale["items"][0]["stale"] is True
        refused = cart.post("/api/cart/items", json={"product_id": product["id"]}, headers=shopper)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert cart.get("/api/cart", headers=shopper).json()["items"][0]["quantity"] == 2


def test_two_cart_processes_fetch_a_cold_product_once_between_them(postgres, redis_server, tmp_path):
    catalog_db, cart_db = fresh_databases(postgres, redis_server)
    prefix = new_prefix()
    admin = {"Authorization": f"Bearer {make_token('admin-1', roles=('admin',))}"}
    shoppers = [as_user(f"cold-{i}") for i in range(10)]
    catalog_log = tmp_path / "catalog.log"
    # Slack for the stall below: the catalog answers late, and must still count as answering.
    slack = {"CATALOG_READ_TIMEOUT": "10", "CACHE_LOCK_SECONDS": "10"}
    with (
        running_catalog(catalog_db, redis_server.url, prefix=prefix, log=catalog_log) as (catalog_url, _),
        running_cart(cart_db, redis_server.url, catalog_url, prefix=prefix, **slack) as (first_url, _),
        running_cart(cart_db, redis_server.url, catalog_url, prefix=prefix, **slack) as (second_url, _),
        httpx.Client(base_url=catalog_url, timeout=5) as catalog,
    ):
        product = catalog.post(
            "/api/products",
            json={"sku": "COLD-1", "name": "Cold", "price": "1.00", "stock": 50},
            headers=admin,
        ).json()
        with httpx.Client(base_url=first_url, timeout=5) as cart:
            for shopper in shoppers:
                cart.post(
                    "/api/cart/items", json={"product_id": product["id"]}, headers=shopper
                ).raise_for_status()
        with sync_client(redis_server.url) as redis:
            redis.delete(test_keys(prefix).product(product["id"]))  # cold again
        batch_calls = catalog_log.read_text().count('"route":"/api/products"')
        carts = (first_url, second_url)

        async def burst() -> list[httpx.Response]:
            async with (
                httpx.AsyncClient(base_url=first_url, timeout=10) as first,
                httpx.AsyncClient(base_url=second_url, timeout=10) as second,
            ):
                return await asyncio.gather(
                    *(
                        client.get("/api/cart", headers=shoppers[i % len(shoppers)])
                        for i in range(100)
                        for client in (first, second)
                    )
                )

        async def burst_while_the_catalog_stalls() -> tuple[list[httpx.Response], int]:
            """The burst, with the catalog's reads of products held back until both processes
            have missed the cold product: they race for it in every run, not only when the
            timing happens to make them. The catalog fetches the carts made, by their counts."""
            fetched_before = sum([await counter(url, FETCHES) for url in carts])
            missed_before = [await counter(url, MISSES) for url in carts]
            stall = await asyncpg.connect(catalog_db)
            try:
                async with stall.transaction():
                    await stall.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
                    sending = asyncio.ensure_future(burst())

                    async def both_missed_while_a_fetch_waits() -> bool:
                        missed = [await counter(url, MISSES) for url in carts]
                        waiting = await stall.fetchval(WAITING_FOR_PRODUCTS)
                        return waiting > 0 and all(m > b for m, b in zip(missed, missed_before, strict=True))

                    await until(both_missed_while_a_fetch_waits, seconds=8)
                responses = await sending  # every response is in: so is every fetch the carts made
            finally:
                await stall.close()
            return responses, sum([await counter(url, FETCHES) for url in carts]) - fetched_before

        responses, fetched = asyncio.run(burst_while_the_catalog_stalls())
        assert [r.status_code for r in responses] == [200] * 200
        assert all(r.json()["items"][0]["unit_price"] == "1.00" for r in responses)
        # No fetch can still come; the catalog logs each request after answering it, so wait
        # until it has logged every fetch the carts counted (more would fail below, not hang).
        wait_until(lambda: catalog_log.read_text().count('"route":"/api/products"') - batch_calls >= fetched)
        # One per process would be 2; the per-product Redis lock makes it 1.
        assert fetched == 1
        assert catalog_log.read_text().count('"route":"/api/products"') - batch_calls == 1


def test_every_cart_process_serves_every_change_once_the_catalog_has_answered_it(postgres, redis_server):
    """The invalidation reaches every cart process: their cache is Redis's (on a cluster, spread
    over every master's shards), and the catalog tombstones each change before it answers, so a
    process that had just served the old product serves the new one at its very next read."""
    catalog_db, cart_db = fresh_databases(postgres, redis_server)
    prefix, count = new_prefix(), 24  # more products than cache shards, so every master holds some
    admin = {"Authorization": f"Bearer {make_token('admin-1', roles=('admin',))}"}
    shopper = as_user(f"e2e-{uuid.uuid4().hex[:8]}")
    with (
        running_catalog(catalog_db, redis_server.url, prefix=prefix) as (catalog_url, _),
        running_cart(cart_db, redis_server.url, catalog_url, prefix=prefix) as (first_url, _),
        running_cart(cart_db, redis_server.url, catalog_url, prefix=prefix) as (second_url, _),
        httpx.Client(base_url=catalog_url, timeout=5) as catalog,
        httpx.Client(timeout=5) as carts,
    ):
        ids = []
        for i in range(count):
            body = {"sku": f"INV-{i}", "name": f"Thing {i}", "price": "1.00", "stock": 9}
            ids.append(catalog.post("/api/products", json=body, headers=admin).json()["id"])
            carts.post(f"{first_url}/api/cart/items", json={"product_id": ids[-1]}, headers=shopper)

        def prices(cart_url: str) -> dict[int, str]:
            items = carts.get(f"{cart_url}/api/cart", headers=shopper).json()["items"]
            return {item["product_id"]: item["unit_price"] for item in items}

        for cart_url in (first_url, second_url):  # both serve the cached products
            assert prices(cart_url) == dict.fromkeys(ids, "1.00")
        for round_, price in enumerate(["2.00", "3.00"], start=1):
            for product_id in ids:
                changed = catalog.patch(
                    f"/api/products/{product_id}", json={"price": price, "version": round_}, headers=admin
                )
                assert changed.status_code == 200, changed.text
                # No wait: the change is visible to both processes as soon as it was answered.
                assert prices(first_url)[product_id] == price
                assert prices(second_url)[product_id] == price
