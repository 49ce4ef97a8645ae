"""The worker under real outages: PostgreSQL crashing under it, and Redis coming back without the
stream (and so without the group). It backs off without counting failures, says so once, and
applies what comes once it can."""

import asyncio
import contextlib
import logging
import uuid

import asyncpg
from redis.asyncio import Redis

from app_cart.adapters.catalog_client import catalog_client
from app_cart.settings import CartSettings
from app_cart.worker.run import cart_worker
from devtools.servers import throwaway_postgres, throwaway_redis
from shared.config import load_settings
from shared.events.envelope import encode, new_event, stream_fields
from shared.keys import CART_GROUP, keys_for
from shared.storage.migrations import SQL_ROOT, migrate
from shared.storage.postgres import create_database
from tests.support.env import service_env
from tests.support.processes import a_cart_holding
from tests.support.redis_mode import client
from tests.support.waits import until


def priced(product_id: int, version: int, price: str) -> dict:
    state = {"id": product_id, "name": f"p{version}", "price": price, "stock": 5}
    state |= {"is_active": True, "category_name": None}
    event = new_event("product.updated", product_id, version, state, ["price"])
    return stream_fields(str(event.id), event.type, product_id, version, encode(event).decode())


@contextlib.asynccontextmanager
async def running_worker(database_url: str, redis_url: str, **extra: str):
    settings = load_settings(
        CartSettings,
        service_env(
            database_url,
            redis_url,
            REDIS_KEY_PREFIX=f"t{uuid.uuid4().hex[:8]}",
            WORKER_BLOCK_SECONDS="0.2",
            **extra,
        ),
    )
    # The suite's Redis through the mode's client; a test's own single server directly.
    redis = client(redis_url) if settings.redis_cluster else Redis.from_url(redis_url)
    db, stop = create_database(settings), asyncio.Event()
    await db.connect()
    catalog = catalog_client(settings, redis)
    worker = cart_worker(settings, db, redis, "outage-test", catalog)
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker, keys_for(settings).catalog_events()
    finally:
        stop.set()
        await task
        await catalog.aclose()
        await db.disconnect()
        await redis.aclose()


async def price_of(database_url: str, product_id: int) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        return str(
            await conn.fetchval("SELECT current_price FROM cart_items WHERE product_id = $1", product_id)
        )
    finally:
        await conn.close()


async def test_a_database_crash_under_a_running_worker(redis_server, caplog):
    caplog.set_level(logging.WARNING, logger="shared.events.consumer")
    with throwaway_postgres(durable=True) as postgres:
        url = postgres.url("cart")
        await migrate(url, SQL_ROOT / "cart")
        await a_cart_holding(url, [7])
        async with running_worker(url, redis_server.url) as (worker, stream):
            await worker.redis.xadd(stream, priced(7, 2, "2.00"))

            async def priced_at(price: str) -> bool:
                try:
                    return await price_of(url, 7) == price
                except (OSError, asyncpg.PostgresError):
                    return False  # the database is still down

            await until(lambda: priced_at("2.00"))
            postgres.crash()
            await worker.redis.xadd(stream, priced(7, 3, "3.00"))

            async def backing_off() -> bool:
                return worker.backoffs > 0

            await until(backing_off)
            postgres.start()
            await until(lambda: priced_at("3.00"), seconds=30)
            assert (worker.failed, worker.parked) == (0, 0)  # an outage is not the events' fault
            assert (await worker.redis.xpending(stream, CART_GROUP))["pending"] == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("PostgreSQL (worker outage-test) cannot be reached" in m for m in messages) == 1
    assert sum("PostgreSQL (worker outage-test) is reachable again" in m for m in messages) == 1


async def test_redis_back_without_the_stream_recreates_the_group(fresh_db_url):
    await migrate(fresh_db_url, SQL_ROOT / "cart")
    await a_cart_holding(fresh_db_url, [8])
    with throwaway_redis() as redis:
        # A single server of its own, whatever the suite's mode: that is what loses its data.
        async with running_worker(fresh_db_url, redis.url, REDIS_CLUSTER="false") as (worker, stream):
            await worker.redis.xadd(stream, priced(8, 2, "2.00"))
            await until(lambda: _is(price_of(fresh_db_url, 8), "2.00"))
            redis.lose_data()  # stream, group and pending list gone (NOGROUP on the next read)
            with contextlib.suppress(Exception):
                await worker.redis.ping()  # our client reconnects to the new server
            await worker.redis.xadd(stream, priced(8, 3, "3.00"))
            await until(lambda: _is(price_of(fresh_db_url, 8), "3.00"))
            groups = await worker.redis.xinfo_groups(stream)
            assert [g["name"] for g in groups] == [CART_GROUP.encode()]
            assert worker.failed == 0


async def _is(value, expected) -> bool:
    return await value == expected
