"""The load test's closing checks on real databases and Redis: quiet when the carts hold what the
catalog says, and a line for each item whose snapshot differs (its category included)."""

import uuid

import asyncpg

from devtools.loadtest import checks
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.redis_mode import CLUSTER


async def test_an_item_whose_snapshot_differs_from_the_catalog_is_reported(postgres, redis_server):
    catalog_url, cart_url = (postgres.url(f"checks_{uuid.uuid4().hex[:8]}") for _ in range(2))
    await migrate(catalog_url, SQL_ROOT / "catalog")
    await migrate(cart_url, SQL_ROOT / "cart")
    catalog, cart = await asyncpg.connect(catalog_url), await asyncpg.connect(cart_url)
    try:
        product_id = await catalog.fetchval(
            "INSERT INTO products (sku, name, price, stock, category_id, category_name)"
            " VALUES ('B-1', 'Boot', 20.00, 5, 7, 'Shoes') RETURNING id"
        )
        cart_id = await cart.fetchval("INSERT INTO carts (user_id) VALUES ('u-1') RETURNING id")
        await cart.execute(
            "INSERT INTO cart_items (cart_id, product_id, quantity, product_name, category_name,"
            " price_when_added, current_price, is_available, product_version, category_id)"
            " VALUES ($1, $2, 1, 'Boot', 'Shoes', 20.00, 20.00, true, 1, 7)",
            cart_id,
            product_id,
        )
        prefix = f"t{uuid.uuid4().hex[:8]}"  # a stream of no one's: nothing pending, nothing dead

        async def run() -> list[str]:
            return await checks.run(
                catalog_url, cart_url, redis_server.url, prefix, seconds=0, cluster=CLUSTER
            )

        assert await run() == []

        await cart.execute("UPDATE cart_items SET category_id = 8")
        [problem] = await run()
        assert problem.startswith(f"cart_items product {product_id}: holds"), problem
    finally:
        await catalog.close()
        await cart.close()
