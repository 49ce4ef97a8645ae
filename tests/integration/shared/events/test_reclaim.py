"""Reclaiming on a real Redis, with the generic consumer and an `apply` of the test's own: when a
pending event is due, how the pending list is read, and what a retry or a parking leaves behind
(the cart's worker retrying and parking its events: tests/integration/app_cart/worker)."""

from redis.asyncio import Redis

from shared.events import reclaim
from shared.events.consumer import Consumer
from shared.events.consumer_config import ConsumerConfig
from shared.events.envelope import encode, new_event, stream_fields
from shared.keys import CART_GROUP, DEAD_CONSUMER, Keys
from tests.support.redis_monitor import commands_sent, in_one_transaction


class Applied(list):
    """An `apply` that succeeds, remembering the products of the events it was given."""

    async def __call__(self, events) -> None:
        self.extend(event.aggregate_id for event in events)


async def nothing() -> None:
    return None


def a_consumer(redis: Redis, keys: Keys, apply: Applied, **config) -> Consumer:
    return Consumer(
        redis,
        keys,
        CART_GROUP,
        "reclaimer",
        ConsumerConfig(**config),
        apply=apply,
        handles={"product.updated"},
        ready=nothing,
    )


async def delivered_to_gone(
    redis: Redis, keys: Keys, products: range, idle_ms: int | None = 120_000
) -> list[bytes]:
    """Events for `products`, delivered once to the worker `gone`, which died (it has no
    heartbeat) `idle_ms` ago (None: just now); their ids."""
    stream, ids = keys.catalog_events(), []
    for n in products:
        event = new_event("product.updated", n, 2, {"id": n}, ["price"])
        ids.append(
            await redis.xadd(stream, stream_fields(str(event.id), event.type, n, 2, encode(event).decode()))
        )
    await redis.xreadgroup(CART_GROUP, "gone", {stream: ">"})
    if idle_ms is not None:  # as if delivered that long ago (JUSTID: not one more delivery)
        await redis.xclaim(stream, CART_GROUP, "gone", 0, ids, idle=idle_ms, justid=True)
    return ids


async def test_an_event_is_due_once_idle_for_its_wait_which_doubles_with_each_delivery(redis, keys):
    applied = Applied()
    worker = a_consumer(redis, keys, applied, retry_base_seconds=1.0)
    reclaimer = worker._reclaimer
    assert [reclaimer.wait_ms(deliveries) for deliveries in (1, 2, 3, 4)] == [1000, 2000, 4000, 8000]
    await worker.ensure_group()
    [message_id] = await delivered_to_gone(redis, keys, range(1))
    # As listed by XPENDING after two deliveries: a millisecond short of its wait, then exactly
    # its wait (XPENDING's IDLE, which listed it, counts that as idle enough too).
    listed = {"message_id": message_id, "times_delivered": 2}
    assert await reclaimer._reclaim_one({**listed, "time_since_delivered": 1999}, "gone") == 0
    assert await reclaimer._reclaim_one({**listed, "time_since_delivered": 2000}, "gone") == 1
    assert (applied, worker.retried) == ([0], 1)


async def test_pending_entries_are_read_a_page_at_a_time_once_due_and_every_one_due_is_parked(
    redis, keys, monkeypatch
):
    monkeypatch.setattr(reclaim, "PAGE", 3)
    applied = Applied()
    worker = a_consumer(redis, keys, applied, retry_base_seconds=30.0, max_deliveries=1)
    stream = keys.catalog_events()
    await worker.ensure_group()
    ids = await delivered_to_gone(redis, keys, range(6))
    [fresh] = await delivered_to_gone(redis, keys, range(6, 7), idle_ms=None)  # not due for 30 s
    pages = [
        [entry["message_id"] for entry in page] async for page in worker._reclaimer._pending_pages("gone")
    ]
    assert pages == [ids[:3], ids[3:]]  # each due entry once; the one not due not even listed
    assert await worker.reclaim() == 6
    assert (worker.parked, applied) == (6, [])  # delivered max_deliveries times: parked, not retried
    dead = await redis.xpending_range(stream, CART_GROUP, "-", "+", 10, consumername=DEAD_CONSUMER)
    assert [entry["message_id"] for entry in dead] == ids
    gone = await redis.xpending_range(stream, CART_GROUP, "-", "+", 10, consumername="gone")
    assert [entry["message_id"] for entry in gone] == [fresh]


async def test_a_retried_event_is_acknowledged_and_its_error_cleared_in_one_transaction(
    redis, keys, stream_master
):
    """Else an acknowledged event could keep, for a moment (or for good, if the worker died in
    between), an error that reads as still failing."""
    applied = Applied()
    worker = a_consumer(redis, keys, applied, retry_base_seconds=1.0)
    await worker.ensure_group()
    [message_id] = await delivered_to_gone(redis, keys, range(1))
    await redis.hset(keys.event_errors(), message_id, "a lock timeout")
    handled = []

    async def reclaim_once() -> None:
        handled.append(await worker.reclaim())

    sent = await commands_sent(stream_master, reclaim_once)
    assert (handled, applied) == ([1], [0])
    stream, text_id = keys.catalog_events(), message_id.decode()
    assert in_one_transaction(
        sent, f"XACK {stream} {CART_GROUP} {text_id}", f"HDEL {keys.event_errors()} {text_id}"
    )
    assert (await redis.xpending(stream, CART_GROUP))["pending"] == 0
    assert not await redis.exists(keys.event_errors())


async def test_a_live_workers_event_is_left_to_it_unless_it_failed_there(redis, keys):
    """An event pending at a worker whose heartbeat is alive, with no error recorded, is being
    applied there now (a long batch): not taken from it, however long it has been idle. Once it
    records an error, or its heartbeat is gone (it died), the event is retried here."""
    applied = Applied()
    worker = a_consumer(redis, keys, applied)
    await worker.ensure_group()
    first, second = await delivered_to_gone(redis, keys, range(2))
    await redis.set(keys.worker_heartbeat("gone"), "alive")  # "gone" lives after all
    assert await worker.reclaim() == 0
    assert applied == []

    # The one in flight comes first in the pending list: the failed one after it is still seen.
    await redis.hset(keys.event_errors(), second, "ValueError: failed there")
    assert await worker.reclaim() == 1
    assert applied == [1]

    await redis.delete(keys.worker_heartbeat("gone"))
    assert await worker.reclaim() == 1
    assert applied == [1, 0]
    assert first not in [
        entry["message_id"]
        for entry in await redis.xpending_range(
            keys.catalog_events(), CART_GROUP, "-", "+", 10, consumername="gone"
        )
    ]
