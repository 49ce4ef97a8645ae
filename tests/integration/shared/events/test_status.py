"""What `/internal/health`, the metrics and the operator's CLI read of the event pipeline: live
workers, the group's lag and pending entries (dead ones apart), and how old the oldest event
still being worked on is."""

import time

from redis.asyncio import Redis

from shared.events.status import PipelineStatus, StreamStatus
from shared.keys import CART_GROUP, DEAD_CONSUMER
from tests.support.redis_mode import test_keys


async def delivered(
    redis: Redis, stream: str, consumer: str, count: int, group: str = CART_GROUP
) -> list[bytes]:
    reply = await redis.xreadgroup(group, consumer, {stream: ">"}, count=count)
    return [entry_id for entry_id, _ in reply[0][1]]


async def test_a_pipeline_that_never_started_has_nothing_to_report(redis, keys):
    status = StreamStatus(redis, keys, CART_GROUP)
    assert await status.summary() == PipelineStatus(
        status="no live worker", workers=0, stream_length=0, lag=None, pending=0, dead=0
    )
    assert await status.groups() == []
    assert await status.pending_by_consumer() == {}
    assert await status.oldest_pending_age_seconds() == 0.0


async def test_the_summary_counts_live_workers_lag_pending_and_dead_events_of_its_group(redis, keys):
    stream = keys.catalog_events()
    for n in range(10):
        await redis.xadd(stream, {"n": n})
    await redis.xgroup_create(stream, CART_GROUP, id="0")
    await redis.xgroup_create(stream, "other", id="0")  # another group: not counted
    await delivered(redis, stream, "reader", 10, group="other")
    read = await delivered(redis, stream, "w-1", 4)  # 6 not yet delivered
    await redis.xack(stream, CART_GROUP, read[0])  # 3 pending
    await redis.xclaim(stream, CART_GROUP, DEAD_CONSUMER, 0, [read[1]], justid=True)  # one of them dead
    for worker in ("w-1", "w-2"):
        await redis.set(keys.worker_heartbeat(worker), "alive", ex=30)
    await redis.set(test_keys("someone-else").worker_heartbeat("w-9"), "alive", ex=30)  # another prefix
    try:
        status = StreamStatus(redis, keys, CART_GROUP)
        assert sorted(await status.live_workers()) == sorted(
            keys.worker_heartbeat(worker) for worker in ("w-1", "w-2")
        )
        assert await status.summary() == PipelineStatus(
            status="ok", workers=2, stream_length=10, lag=6, pending=3, dead=1
        )
        assert await status.pending_by_consumer() == {"w-1": 2, DEAD_CONSUMER: 1}
        assert {group["name"] for group in await status.groups()} == {CART_GROUP, "other"}
    finally:
        await redis.delete(test_keys("someone-else").worker_heartbeat("w-9"))


async def test_the_lag_is_unknown_when_redis_cannot_tell_it(redis, keys):
    """Redis answers no lag once an entry past the group's last delivered one was deleted."""
    stream = keys.catalog_events()
    ids = [await redis.xadd(stream, {"n": n}) for n in range(3)]
    await redis.xgroup_create(stream, CART_GROUP, id="0")
    await delivered(redis, stream, "w-1", 1)
    await redis.xdel(stream, ids[2])
    summary = await StreamStatus(redis, keys, CART_GROUP).summary()
    assert (summary.lag, summary.pending, summary.stream_length) == (None, 1, 2)


async def test_the_oldest_pending_age_is_that_of_the_oldest_event_a_live_consumer_holds(redis, keys):
    stream = keys.catalog_events()
    now_ms = int(time.time() * 1000)
    # Seconds, by id time: days, so that the age's unit is checked to better than a part in 10,000.
    ages = {"dead one": 900_000, "w-1 first": 600_000, "w-1 second": 500_000, "w-2": 60}
    for seq, age in enumerate(ages.values()):
        await redis.xadd(stream, {"n": seq}, id=f"{now_ms - age * 1000}-{seq}")
    await redis.xgroup_create(stream, CART_GROUP, id="0")
    [dead] = await delivered(redis, stream, "parker", 1)
    await redis.xclaim(stream, CART_GROUP, DEAD_CONSUMER, 0, [dead], justid=True)  # dead: not counted
    await delivered(redis, stream, "w-1", 2)
    await delivered(redis, stream, "w-2", 1)
    status = StreamStatus(redis, keys, CART_GROUP)
    # Redis's clock in whole seconds, against the test's: a second either way, plus the run.
    assert 599_999 <= await status.oldest_pending_age_seconds() <= 600_002
    for entry_id in (
        entry["message_id"] for entry in await redis.xpending_range(stream, CART_GROUP, "-", "+", 10)
    ):
        if entry_id != dead:
            await redis.xack(stream, CART_GROUP, entry_id)
    assert await status.oldest_pending_age_seconds() == 0.0  # only a dead one left
