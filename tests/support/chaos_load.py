"""The chaos tests' load and checks: a seeded catalog and carts, an admin writing and shoppers
reading for as long as the chaos lasts (answers tallied by status), and what "converged" means:
every snapshot equal to the catalog, nothing unsent, pending or dead on any stream."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter

import asyncpg
import httpx
from redis.asyncio import Redis

from shared.keys import CART_GROUP, DEAD_CONSUMER
from tests.support.env import as_user, make_token

PRODUCTS, CATEGORIES, SHOPPERS = 24, 3, 12
ADMIN = {"Authorization": f"Bearer {make_token('admin-chaos', roles=('admin',))}"}
# Fast recovery for a short test: workers take over a dead one's events after 2 s, retry after
# 0.2 s, sweep every 3 s; the relay polls every 0.2 s.
FAST = {
    "WORKER_HEARTBEAT_SECONDS": "2",
    "WORKER_RETRY_BASE_SECONDS": "0.2",
    "WORKER_BLOCK_SECONDS": "0.5",
    "SWEEP_INTERVAL_SECONDS": "3",
    "RELAY_POLL_SECONDS": "0.2",
    "CATALOG_READ_TIMEOUT": "1",
    "BREAKER_RECOVERY_SECONDS": "1",
}


class Tally:
    def __init__(self) -> None:
        self.reads: Counter[int | str] = Counter()
        self.writes: Counter[int | str] = Counter()
        self.kills: Counter[str] = Counter()


async def seed_catalog(catalog: str) -> None:
    async with httpx.AsyncClient(base_url=catalog, timeout=10) as client:
        categories = []
        for i in range(CATEGORIES):
            answer = await client.post("/api/categories", json={"name": f"Chaos {i}"}, headers=ADMIN)
            categories.append(answer.json()["id"])
        for i in range(PRODUCTS):
            body = {"sku": f"CH-{i}", "name": f"Chaos thing {i}", "price": "10.00", "stock": 50}
            body["category_id"] = categories[i % CATEGORIES]
            assert (await client.post("/api/products", json=body, headers=ADMIN)).status_code == 201


async def seed_carts(cart: str, rng: random.Random) -> list[dict[str, str]]:
    shoppers = [as_user(f"chaos-{uuid.uuid4().hex[:8]}") for _ in range(SHOPPERS)]
    async with httpx.AsyncClient(base_url=cart, timeout=10) as client:
        for user in shoppers:
            for product_id in rng.sample(range(1, PRODUCTS + 1), 4):
                answer = await client.post("/api/cart/items", json={"product_id": product_id}, headers=user)
                assert answer.status_code == 200, answer.text
            wished = rng.randint(1, PRODUCTS)
            assert (
                await client.post("/api/wishlist/items", json={"product_id": wished}, headers=user)
            ).is_success
    return shoppers


async def write_forever(catalog: str, rng: random.Random, tally: Tally, stop: asyncio.Event) -> None:
    """An admin changing prices, stock and activity, and now and then renaming a category."""
    async with httpx.AsyncClient(base_url=catalog, timeout=3) as client:
        while not stop.is_set():
            try:
                if rng.random() < 0.05:
                    category = rng.randint(1, CATEGORIES)
                    current = await client.get(f"/api/categories/{category}")
                    body = {"name": f"Chaos {category} r{rng.randint(1, 10**6)}"}
                    url = f"/api/categories/{category}"
                else:
                    product = rng.randint(1, PRODUCTS)
                    current = await client.get(f"/api/products/{product}")
                    change = rng.choice(["price", "stock", "is_active"])
                    value = {
                        "price": f"{rng.randint(1, 99)}.{rng.randint(0, 99):02d}",
                        "stock": rng.choice([0, 3, 20, 100]),
                        "is_active": rng.random() < 0.8,
                    }[change]
                    body, url = {change: value}, f"/api/products/{product}"
                tally.writes[current.status_code] += 1
                if current.status_code == 200:
                    headers = {**ADMIN, "If-Match": current.headers["etag"]}
                    tally.writes[(await client.patch(url, json=body, headers=headers)).status_code] += 1
            except httpx.TransportError:
                tally.writes["unreachable"] += 1
                await asyncio.sleep(0.1)  # the catalog is down: the load pauses, as a client would


async def read_forever(cart: str, shoppers: list[dict[str, str]], tally: Tally, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=cart, timeout=5) as client:
        while not stop.is_set():
            for user in shoppers:
                try:
                    answer = await client.get("/api/cart", headers=user)
                    tally.reads[answer.status_code] += 1
                    if answer.status_code == 503:
                        tally.reads[answer.json()["type"].rpartition(":")[2]] += 1
                except httpx.TransportError:
                    tally.reads["unreachable"] += 1
                    await asyncio.sleep(0.1)  # the cart is down


async def mismatches(catalog_db: str, cart_db: str) -> list[str]:
    """Every cart and wishlist item whose snapshot differs from the catalog's product."""
    catalog, cart = await asyncpg.connect(catalog_db), await asyncpg.connect(cart_db)
    try:
        products = {
            row["id"]: row
            for row in await catalog.fetch(
                "SELECT id, name, category_name, price, is_active AND stock > 0 AS available, version"
                " FROM products"
            )
        }
        wrong = []
        for table in ("cart_items", "wishlist_items"):
            for item in await cart.fetch(
                "SELECT product_id, product_name, category_name, current_price, is_available,"
                f" product_version FROM {table}"
            ):
                p = products[item["product_id"]]
                want = (p["name"], p["category_name"], p["price"], p["available"], p["version"])
                have = tuple(item.values())[1:]
                if have != want:
                    wrong.append(f"{table} {item['product_id']}: {have} != catalog {want}")
        return wrong
    finally:
        await catalog.close()
        await cart.close()


async def pipeline_settled(catalog_db: str, redis: Redis, streams: list[str]) -> list[str]:
    """What is not done yet: unsent outbox rows, events pending or dead on any of `streams`."""
    problems = []
    conn = await asyncpg.connect(catalog_db)
    try:
        if unsent := await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
            problems.append(f"{unsent} outbox rows unsent")
    finally:
        await conn.close()
    for stream in streams:
        if not await redis.exists(stream):
            problems.append(f"{stream}: no stream yet")
            continue
        summary = await redis.xpending(stream, CART_GROUP)
        for consumer in summary.get("consumers", []):
            kind = "dead" if consumer["name"].decode() == DEAD_CONSUMER else "pending"
            problems.append(f"{stream}: {consumer['pending']} {kind} at {consumer['name'].decode()}")
    return problems
