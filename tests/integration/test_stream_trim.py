"""Trimming the event stream never removes an entry a group has not read or still retries."""

import uuid

import pytest
from redis.asyncio import Redis

from shared.keys import CART_GROUP, DEAD_CONSUMER
from shared.stream_trim import trim


@pytest.fixture
async def stream(redis_server):
    async with Redis.from_url(redis_server.url) as redis:
        yield redis, f"t{uuid.uuid4().hex[:8]}:catalog-events"


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
