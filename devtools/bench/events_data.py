"""What the event benchmarks share (devtools/bench/worker.py, e2e.py, cluster.py): the carts
and products they fill, the stream entries they write, the raw read-and-acknowledge loop they
compare against, and running services as processes for the length of a block.

1,000 products in 1,000 carts: 10 items a cart, each product in 10 carts (set up by SQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

from shared.events.envelope import encode, new_event, stream_fields
from shared.storage.migrations import SQL_ROOT, migrate

ROOT = Path(__file__).resolve().parents[2]

CARTS, ITEMS_PER_CART, PRODUCTS, VERSIONS = 1_000, 10, 1_000, 10
EVENTS = PRODUCTS * VERSIONS
BATCH, ROUNDS = 100, 3
Fields = dict[Any, Any]


async def sql(database_url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def fill_carts(cart_db: str) -> None:
    """CARTS carts of ITEMS_PER_CART items at version 1; each product sits in ITEMS_PER_CART carts."""
    await sql(cart_db, "INSERT INTO carts (user_id) SELECT 'u' || n FROM generate_series(1, $1) AS n", CARTS)
    await sql(
        cart_db,
        "INSERT INTO cart_items (cart_id, product_id, quantity, product_name, price_when_added,"
        " current_price, is_available, product_version)"
        " SELECT c.id, (c.id + j * $1::int) % $2::int + 1, 1, 'p', 1, 1, true, 1"
        " FROM carts AS c, generate_series(0, $3::int - 1) AS j",
        PRODUCTS // ITEMS_PER_CART,
        PRODUCTS,
        ITEMS_PER_CART,
    )


async def reset_items(cart_db: str) -> None:
    await sql(cart_db, "UPDATE cart_items SET product_version = 1, current_price = 1")


def entry(product_id: int, version: int) -> Fields:
    """A product.updated stream entry, as the relay writes it."""
    state = {"id": product_id, "name": f"p{version}", "price": f"{version}.00", "stock": 5}
    event = new_event(
        "product.updated", product_id, version, state | {"is_active": True, "category_name": None}
    )
    return stream_fields(str(event.id), event.type, product_id, version, encode(event).decode())


async def raw_consume(redis: Redis, stream: str, count: int) -> float:
    """Read `count` entries in a group of its own, `XREADGROUP COUNT BATCH` then one XACK each."""
    await redis.xgroup_create(stream, "raw", id="0")
    started, done = time.perf_counter(), 0
    while done < count:
        reply: Any = await redis.xreadgroup("raw", "raw-1", {stream: ">"}, count=BATCH)
        ids = [message_id for message_id, _ in reply[0][1]]
        await redis.xack(stream, "raw", *ids)
        done += len(ids)
    return time.perf_counter() - started


async def poll(check: Callable[[], Awaitable[bool]], deadline_seconds: float) -> float:
    """Poll `check` every 20 ms until true; the perf_counter time it first was."""
    deadline = time.monotonic() + deadline_seconds
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError("not done before the deadline")
        await asyncio.sleep(0.02)  # polling other processes' effects
    return time.perf_counter()


@contextlib.contextmanager
def processes(*commands: tuple[str, dict[str, str]]) -> Iterator[None]:
    """`python -m <module>` for each (module, environment), terminated when the block ends."""
    started = [
        subprocess.Popen([sys.executable, "-m", module], env={**os.environ, **env}, cwd=ROOT)
        for module, env in commands
    ]
    try:
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=30)


async def prepare(catalog_db: str, *cart_dbs: str) -> None:
    """Migrate a catalog database and cart databases, and fill each cart database's carts."""
    await migrate(catalog_db, SQL_ROOT / "catalog")
    for cart_db in cart_dbs:
        await migrate(cart_db, SQL_ROOT / "cart")
        await fill_carts(cart_db)
