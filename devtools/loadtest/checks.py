"""What a load test must never break, checked once it ends (each waits, up to a deadline, for
the events still in flight): every event sent and applied (nothing unsent, pending or dead),
every cart and wishlist snapshot equal to the catalog's product, and every promo code's use
count equal to the carts holding it. Read straight from PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from app_cart.domain.availability import is_available
from app_cart.worker.handlers import ProductState
from shared.events.status import pipeline_status
from shared.keys import CART_GROUP, Keys

Check = Callable[[], Awaitable[list[str]]]


async def _settled(check: Check, seconds: float) -> list[str]:
    """The check's problems once it has none, or as they stand at the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        problems = await check()
        if not problems or time.monotonic() > deadline:
            return problems
        await asyncio.sleep(1)  # polling: events are still being applied


def _snapshot_of(product: asyncpg.Record) -> tuple[object, ...]:
    """What an item of `product` must hold: (name, price, available, version, category)."""
    state = ProductState(**{key: product[key] for key in ProductState.__struct_fields__})
    return (
        product["name"],
        product["price"],
        is_available(state),
        product["version"],
        product["category_id"],
    )


_ITEMS = "SELECT product_id, product_name, current_price, is_available, product_version, category_id FROM {}"
# Every field of ProductState, and the version: what an item's snapshot follows from.
_PRODUCTS = f"SELECT {', '.join(ProductState.__struct_fields__)}, version FROM products"


async def run(
    catalog_url: str,
    cart_url: str,
    redis_url: str,
    prefix: str,
    seconds: float = 120,
    *,
    cluster: bool = False,
    partitions: int = 1,
) -> list[str]:
    """Every broken invariant, as a line each (empty: all hold). `cluster` and `partitions`: the
    system's REDIS_CLUSTER and STREAM_PARTITIONS."""
    catalog, cart = await asyncpg.connect(catalog_url), await asyncpg.connect(cart_url)
    redis: Redis = RedisCluster.from_url(redis_url) if cluster else Redis.from_url(redis_url)  # type: ignore[assignment]
    keys = Keys(prefix, cluster=cluster, partitions=partitions)
    try:

        async def events() -> list[str]:
            unsent = await catalog.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            found = await pipeline_status(redis, keys, CART_GROUP)  # every partition
            problems = [f"{unsent} outbox events unsent"] if unsent else []
            if found.pending or found.lag:
                problems.append(f"{found.pending} events pending, lag {found.lag}")
            if found.dead:
                problems.append(f"{found.dead} dead events")
            return problems

        async def snapshots() -> list[str]:
            products = {row["id"]: row for row in await catalog.fetch(_PRODUCTS)}
            problems = []
            for table in ("cart_items", "wishlist_items"):
                for row in await cart.fetch(_ITEMS.format(table)):
                    product = products.get(row["product_id"])
                    held = tuple(row)[1:]
                    if product is not None and held != _snapshot_of(product):
                        expected = _snapshot_of(product)
                        problems.append(f"{table} product {row[0]}: holds {held}, catalog {expected}")
            return problems

        async def promo_uses() -> list[str]:
            rows = await cart.fetch(
                "SELECT p.code, p.uses, count(c.cart_id) AS held FROM promo_codes p"
                " LEFT JOIN cart_promo_codes c ON c.promo_code_id = p.id GROUP BY p.id"
            )
            return [
                f"promo code {r['code']}: uses {r['uses']}, held by {r['held']} carts"
                for r in rows
                if r["uses"] != r["held"]
            ]

        return [
            *await _settled(events, seconds),
            *await _settled(snapshots, seconds),
            *await _settled(promo_uses, 5),
        ]
    finally:
        await catalog.close()
        await cart.close()
        await redis.aclose()
