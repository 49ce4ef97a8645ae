"""Redis restarted with its append-only file: the consumer group survives, and work resumes."""

import uuid

import anyio
import asyncpg
import pytest
from redis.asyncio import Redis

from devtools.servers import throwaway_redis
from shared.keys import CART_GROUP, Keys
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.env import service_env
from tests.support.processes import a_cart_holding, burst, product_updated

pytestmark = [pytest.mark.e2e, pytest.mark.own_redis]  # one server's restart with its AOF

PRODUCTS = 30
RETRY_BASE_SECONDS = 0.05


async def versions(cart_db: str) -> dict[int, int]:
    conn = await asyncpg.connect(cart_db)
    try:
        rows = await conn.fetch("SELECT product_id, product_version FROM cart_items")
    finally:
        await conn.close()
    return {row["product_id"]: row["product_version"] for row in rows}


async def group_state(redis: Redis, stream: str) -> tuple[dict[str, object], list[tuple[bytes, bytes, int]]]:
    """The group as XINFO GROUPS shows it, and its pending entries (id, consumer, deliveries).

    Without its lag: Redis 7.0 does not log how many entries a group read (XREADGROUP goes to
    the append-only file as XCLAIM ... LASTID), so after a reload the lag reads null."""
    [group] = await redis.xinfo_groups(stream)
    pending = await redis.xpending_range(stream, CART_GROUP, "-", "+", 1000)
    kept = {key: group[key] for key in ("name", "consumers", "pending", "last-delivered-id")}
    return kept, [(e["message_id"], e["consumer"], e["times_delivered"]) for e in pending]


async def due(redis: Redis, stream: str) -> int:
    """How many pending events have waited long enough to be taken over from a dead worker."""
    idle_ms = int(RETRY_BASE_SECONDS * 1000) + 1
    return len(await redis.xpending_range(stream, CART_GROUP, "-", "+", 100, idle=idle_ms))


async def test_a_restart_keeps_the_group_and_its_pending_events_and_a_worker_finishes_them(postgres):
    prefix, cart_db = f"t{uuid.uuid4().hex[:8]}", postgres.url(f"aof_{uuid.uuid4().hex[:8]}")
    await migrate(cart_db, SQL_ROOT / "cart")
    await a_cart_holding(cart_db, range(1, PRODUCTS + 1))
    stream = Keys(prefix).catalog_events()
    with throwaway_redis(appendonly=True) as server:
        settings = {"REDIS_KEY_PREFIX": prefix, "WORKER_RETRY_BASE_SECONDS": str(RETRY_BASE_SECONDS)}
        env = service_env(cart_db, server.url, **settings)

        async with Redis.from_url(server.url) as redis:
            for product_id in range(1, 11):
                await redis.xadd(stream, product_updated(product_id, 2))
            await burst("app_cart.worker", env)  # events 1 to 10 applied; the group made
            ids = [await redis.xadd(stream, product_updated(p, 2)) for p in range(11, PRODUCTS + 1)]
            # A worker reads 11 to 20 and dies before applying them (it leaves no heartbeat);
            # 21 to 30 are not read yet.
            await redis.xreadgroup(CART_GROUP, "gone-worker", {stream: ">"}, count=10)
            before = await group_state(redis, stream)
        assert (before[0]["pending"], before[0]["last-delivered-id"]) == (10, ids[9])
        assert [entry[:2] for entry in before[1]] == [(i, b"gone-worker") for i in ids[:10]]

        server.stop()  # SIGTERM: Redis shuts down
        server.start()  # the same directory and port: it loads its append-only file

        async with Redis.from_url(server.url) as redis:
            after = await group_state(redis, stream)
            assert after == before  # the group, its last delivered id, its pending entries
            assert await redis.xlen(stream) == PRODUCTS
            with anyio.fail_after(10):  # until the dead worker's events are due for a takeover
                while await due(redis, stream) < 10:  # noqa: ASYNC110 (Redis's state: polled)
                    await anyio.sleep(0.01)
            await burst("app_cart.worker", env)
            assert (await redis.xpending(stream, CART_GROUP))["pending"] == 0
            assert (await group_state(redis, stream))[0]["last-delivered-id"] == ids[-1]  # all read
    # Every event applied: the 10 before the restart, the 10 taken over, the 10 read after.
    assert await versions(cart_db) == dict.fromkeys(range(1, PRODUCTS + 1), 2)
