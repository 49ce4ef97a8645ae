"""Trimming the event stream never removes an entry a group has not read or still retries."""

import os
import subprocess
import sys
import time
import uuid

import anyio
import asyncpg
import pytest

from shared.events.trim import trim
from shared.keys import CART_GROUP, DEAD_CONSUMER
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.env import service_env
from tests.support.processes import a_cart_holding, product_updated
from tests.support.redis_mode import client, test_keys


@pytest.fixture
async def stream(redis_server):
    async with client(redis_server.url) as redis:
        yield redis, test_keys(f"t{uuid.uuid4().hex[:8]}").catalog_events()


async def fill(redis, stream, n: int) -> list[bytes]:
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(n):
            pipe.xadd(stream, {"n": i})
        return list(await pipe.execute())


async def read(redis, stream, consumer: str, count: int) -> list[bytes]:
    reply = await redis.xreadgroup(CART_GROUP, consumer, {stream: ">"}, count=count)
    return [message_id for message_id, _ in reply[0][1]]


async def test_without_a_group_nothing_is_trimmed(stream):
    redis, key = stream
    await fill(redis, key, 500)
    assert await trim(redis, key, retention_seconds=0) == 0
    assert await redis.xlen(key) == 500


async def test_unread_and_pending_entries_survive_and_the_rest_goes(stream):
    redis, key = stream
    ids = await fill(redis, key, 1000)
    await redis.xgroup_create(key, CART_GROUP, id="0")
    read_ids = await read(redis, key, "worker-1", 600)  # 600 read, 400 unread
    await redis.xack(key, CART_GROUP, *read_ids[:400])  # 400 applied, 200 still pending
    removed = await trim(redis, key, retention_seconds=0)
    assert removed > 0
    remaining = [message_id for message_id, _ in await redis.xrange(key)]
    assert set(ids[400:]) <= set(remaining)  # every pending and unread entry is still there
    assert min(remaining) <= ids[400]


async def test_a_dead_event_does_not_hold_the_stream_back(stream):
    redis, key = stream
    ids = await fill(redis, key, 1000)
    await redis.xgroup_create(key, CART_GROUP, id="0")
    read_ids = await read(redis, key, "worker-1", 1000)
    await redis.xclaim(key, CART_GROUP, DEAD_CONSUMER, 0, [read_ids[5]], justid=True)  # parked early
    await redis.xack(key, CART_GROUP, *[i for i in read_ids if i != read_ids[5]][:-100])
    await trim(redis, key, retention_seconds=0)
    remaining = [message_id for message_id, _ in await redis.xrange(key)]
    assert set(ids[-100:]) <= set(remaining)  # the live pending ones stay
    assert len(remaining) < 500  # far past the dead one: it did not block trimming


async def test_recent_history_is_kept(stream):
    redis, key = stream
    await fill(redis, key, 1000)
    await redis.xgroup_create(key, CART_GROUP, id="$")  # everything counts as read
    assert await trim(redis, key, retention_seconds=3600) == 0


async def test_history_older_than_the_retention_goes_and_younger_history_stays(stream):
    redis, key = stream
    now_ms = int(time.time() * 1000)
    # Two macro nodes (100 entries each) a second past an hour's retention, then two well inside it.
    old = [f"{now_ms - 3_601_000}-{seq}" for seq in range(200)]
    young = [f"{now_ms - 3_500_000}-{seq}" for seq in range(200)]
    async with redis.pipeline(transaction=False) as pipe:
        for entry_id in old + young:
            pipe.xadd(key, {"n": 1}, id=entry_id)
        await pipe.execute()
    await redis.xgroup_create(key, CART_GROUP, id="$")  # everything counts as read
    assert await trim(redis, key, retention_seconds=3600) == 200
    assert [entry_id.decode() for entry_id, _ in await redis.xrange(key)] == young


EVENTS, POISON_EVERY, TRIM_EVERY = 1000, 20, 25  # updates; one poison event (it always fails) per 20


async def quiet(redis, key: str, last_id: bytes) -> bool:
    """Every entry up to `last_id` read by the group, and none pending but the dead ones."""
    [group] = await redis.xinfo_groups(key)
    summary = await redis.xpending(key, CART_GROUP)
    live = sum(c["pending"] for c in summary["consumers"] if c["name"].decode() != DEAD_CONSUMER)
    return group["last-delivered-id"] == last_id and live == 0


async def test_under_load_trimming_never_removes_an_unread_or_pending_entry(postgres, redis_server):
    # Two worker processes consume while events are appended and the stream is trimmed as hard
    # as it can be (no retention), over and over. Poison events fail, are retried and parked:
    # pending entries that move between consumers (XCLAIM) and must keep their payload.
    prefix, cart_db = f"t{uuid.uuid4().hex[:8]}", postgres.url(f"trim_{uuid.uuid4().hex[:8]}")
    await migrate(cart_db, SQL_ROOT / "cart")
    await a_cart_holding(cart_db, range(1, EVENTS + 1))
    keys = test_keys(prefix)
    key = keys.catalog_events()
    settings = {
        "REDIS_KEY_PREFIX": prefix,
        "WORKER_BATCH_SIZE": "20",
        "WORKER_BLOCK_SECONDS": "0.05",
        "WORKER_RETRY_BASE_SECONDS": "0.01",
        "WORKER_MAX_DELIVERIES": "3",
    }
    env = {**os.environ, **service_env(cart_db, redis_server.url, **settings)}
    poison: dict[bytes, str] = {}  # message id -> its payload
    removed = 0
    async with client(redis_server.url) as redis:
        await redis.xgroup_create(key, CART_GROUP, id="0", mkstream=True)
        workers = [
            await anyio.open_process(
                [sys.executable, "-m", "app_cart.worker"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            last_id = b""
            for product_id in range(1, EVENTS + 1):
                last_id = await redis.xadd(key, product_updated(product_id, 2))
                if product_id % POISON_EVERY == 0:
                    payload = f"not json {product_id}"
                    last_id = await redis.xadd(key, {"type": "product.updated", "event": payload})
                    poison[last_id] = payload
                if product_id % TRIM_EVERY == 0:  # while the workers read, fail and retry
                    removed += await trim(redis, key, retention_seconds=0)
            with anyio.fail_after(60):  # until the workers have done all they can
                while not await quiet(redis, key, last_id):  # other processes: polled
                    assert [worker.returncode for worker in workers] == [None, None]
                    removed += await trim(redis, key, retention_seconds=0)
                    await anyio.sleep(0.05)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                await worker.wait()
        assert removed > 0  # it did trim, under load
        # Every poison event was parked with its payload, which is kept beside the stream. (One
        # trimmed while it waited for a retry would vanish from the group, never parked.)
        parked = {m: await redis.hget(keys.dead_event(m.decode()), "event") for m in poison}
        assert parked == {message_id: payload.encode() for message_id, payload in poison.items()}
        # And each is still listed as dead (a stale reclaim could once take one back).
        dead = await redis.xpending_range(key, CART_GROUP, "-", "+", 1000, consumername=DEAD_CONSUMER)
        assert {entry["message_id"] for entry in dead} == set(poison)
    conn = await asyncpg.connect(cart_db)
    try:
        applied = await conn.fetchval("SELECT count(*) FROM cart_items WHERE product_version = 2")
    finally:
        await conn.close()
    assert applied == EVENTS  # every update read and applied: none trimmed unread
