"""The generic consumer on a real Redis, with an `apply` of the test's own (the cart's worker, with
its handlers and database, is tests/integration/app_cart/worker): what it does when Redis or the
dependency fails it, and when Redis will not take an event's error record."""

import asyncio
import logging

import pytest
from opentelemetry import propagate
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from shared.events import consumer as consumer_module
from shared.events.consumer import Consumer, DependencyDown
from shared.events.consumer_config import ConsumerConfig
from shared.events.envelope import Event, encode, new_event, stream_fields
from shared.keys import CART_GROUP, Keys
from tests.support.waits import until

HANDLES = {"product.updated"}


async def nothing(*_) -> None:
    return None


def a_consumer(redis: Redis, keys: Keys, name: str = "w-1", *, apply=nothing, ready=nothing) -> Consumer:
    return Consumer(
        redis, keys, CART_GROUP, name, ConsumerConfig(), apply=apply, handles=HANDLES, ready=ready
    )


async def send(redis: Redis, keys: Keys, *entries: Event | dict) -> list[bytes]:
    """Events (or raw entries, as dicts) appended to the stream, in order; their ids."""
    ids = []
    for entry in entries:
        if isinstance(entry, Event):
            entry = stream_fields(
                str(entry.id), entry.type, entry.aggregate_id, entry.version, encode(entry).decode()
            )
        ids.append(await redis.xadd(keys.catalog_events(), entry))
    return ids


def updated(product_id: int) -> Event:
    return new_event("product.updated", product_id, 2, {"id": product_id}, ["price"])


@pytest.mark.parametrize("refusal", ["wrong type", "connection reset"])
async def test_an_error_redis_will_not_record_still_leaves_the_event_pending_and_the_rest_acknowledged(
    redis, keys, monkeypatch, refusal
):
    """The error record is for operators and the retry's log line: if Redis refuses it (an
    answer, or the connection dropping), the event is still left pending, and the events
    applied beside it are still acknowledged, with no backoff as if Redis were down."""
    applied = []

    async def apply(events):
        applied.extend(event.aggregate_id for event in events)

    worker = a_consumer(redis, keys, apply=apply)
    await worker.ensure_group()
    if refusal == "wrong type":
        await redis.set(keys.event_errors(), "not a hash")  # HSET answers WRONGTYPE
    else:
        hset = redis.hset

        async def reset(name, *args, **kwargs):
            if name == keys.event_errors():
                raise ConnectionResetError("connection reset by peer")
            return await hset(name, *args, **kwargs)

        monkeypatch.setattr(redis, "hset", reset)
    ids = await send(redis, keys, updated(1), {"type": "product.updated", "event": "not json"}, updated(2))
    await worker.run(asyncio.Event(), burst=True)
    assert applied == [1, 2]
    pending = await redis.xpending_range(keys.catalog_events(), CART_GROUP, "-", "+", 10)
    assert [entry["message_id"] for entry in pending] == [ids[1]]
    assert (worker.applied, worker.failed, worker.backoffs) == (2, 1, 0)


async def test_outages_are_told_apart_said_once_with_their_cause_and_backed_off_doubling(
    redis, keys, monkeypatch, caplog
):
    """Redis failing the worker (here: the stream's key holds a string), then the dependency
    (`apply` raises DependencyDown, then `ready` fails): each outage is said once, as that of
    what failed and with the error, and the waits start at half a second and double."""
    caplog.set_level(logging.WARNING, logger="shared.events.consumer")
    stream, database, waits = keys.catalog_events(), {"up": False}, []

    async def apply(events):
        if not database["up"]:
            raise DependencyDown("connection refused")

    async def ready():
        if not database["up"]:
            raise ConnectionRefusedError("connection refused")

    async def wait(stop, seconds):  # the backoff, recorded instead of slept; the world moves on
        waits.append(seconds)
        if len(waits) == 2:  # Redis is fine again, and there is an event to read
            await redis.delete(stream)
            await send(redis, keys, updated(1))
        elif len(waits) == 4:
            database["up"] = True

    monkeypatch.setattr(consumer_module, "sleep_unless_stopped", wait)
    await redis.set(stream, "not a stream")
    worker = a_consumer(redis, keys, apply=apply, ready=ready)
    await worker.run(asyncio.Event(), burst=True)
    assert waits == [0.5, 1.0, 2.0, 4.0]
    assert worker.backoffs_by == {"redis": 2, "database": 2}
    said = [
        record.getMessage()
        for record in caplog.records
        if record.name == "shared.events.consumer" and "cannot be reached" in record.getMessage()
    ]
    assert len(said) == 2, said
    assert said[0].startswith("Redis (worker w-1) cannot be reached (ResponseError: WRONGTYPE"), said
    assert said[1] == "the database (worker w-1) cannot be reached (DependencyDown: connection refused)"


def test_a_consumer_config_refuses_a_negative_race_retry_count():
    # With -1 the batch loop would acknowledge a batch without ever applying it.
    from shared.events.consumer_config import ConsumerConfig

    with pytest.raises(ValueError, match="race_retries"):
        ConsumerConfig(race_retries=-1)
    assert ConsumerConfig(race_retries=0).race_retries == 0


async def test_a_batch_is_at_most_batch_size_and_a_burst_drains_a_longer_backlog(redis, keys):
    """Five events read two at a time: three batches, each told to `on_batch` with its size and
    how long it took, and a burst run goes on until the backlog is empty."""
    applied, batches = [], []

    async def apply(events):
        applied.extend(event.aggregate_id for event in events)

    worker = Consumer(
        redis,
        keys,
        CART_GROUP,
        "w-1",
        ConsumerConfig(batch_size=2),
        apply=apply,
        handles=HANDLES,
        ready=nothing,
    )
    worker.on_batch = lambda size, seconds: batches.append((size, seconds))
    await send(redis, keys, *(updated(product_id) for product_id in range(1, 6)))
    await worker.run(asyncio.Event(), burst=True)
    assert applied == [1, 2, 3, 4, 5]
    assert [size for size, _ in batches] == [2, 2, 1]
    assert all(isinstance(seconds, float) and 0 <= seconds < 5 for _, seconds in batches), batches


async def _blocked_reads(redis: Redis) -> int:
    """Connections of `redis` (one server: CLIENT LIST is per node) blocked in XREADGROUP."""
    clients = await redis.client_list()
    return sum(
        1 for client in clients if client.get("cmd") == "xreadgroup" and "b" in client.get("flags", "")
    )


async def test_a_read_waits_for_the_next_event_unless_in_a_burst(redis, keys, stream_master):
    """Outside a burst, a read on an empty stream blocks (up to `block_seconds`) and returns the
    event appended meanwhile, rather than polling; in a burst it returns at once."""
    config = ConsumerConfig(block_seconds=30)
    worker = Consumer(redis, keys, CART_GROUP, "w-1", config, apply=nothing, handles=HANDLES, ready=nothing)
    await worker.ensure_group()
    assert await worker._read(burst=True) == []
    read = asyncio.create_task(worker._read(burst=False))  # on a connection of its own
    await until(lambda: _blocked_or_done(stream_master, read))
    assert not read.done(), "the read returned without waiting"
    [sent] = await send(redis, keys, updated(1))
    messages = await asyncio.wait_for(read, 10)
    assert [message_id for message_id, _ in messages] == [sent]


async def _blocked_or_done(redis: Redis, read: asyncio.Task) -> bool:
    return read.done() or await _blocked_reads(redis) > 0


async def test_a_stream_lost_with_its_group_is_recreated_and_read_again(redis, keys):
    """Redis restarted without its data: the group is gone (NOGROUP). The consumer creates it
    again and applies what is written after, instead of failing every read."""
    applied = []

    async def apply(events):
        applied.extend(event.aggregate_id for event in events)

    worker = a_consumer(redis, keys, apply=apply)
    await send(redis, keys, updated(1))
    await worker.run(asyncio.Event(), burst=True)
    await redis.delete(keys.catalog_events())  # the stream, and its group with it
    await send(redis, keys, updated(2))  # a stream again, with no group
    await worker.run(asyncio.Event(), burst=True)
    assert applied == [1, 2]
    groups = await redis.xinfo_groups(keys.catalog_events())
    assert [group["name"] for group in groups] == [CART_GROUP.encode()]

    # Lost again, this time between the reclaim (which notices first, above) and the read.
    reclaim, lost = worker.reclaim, []

    async def reclaim_then_lose() -> int:
        found = await reclaim()
        if not lost:
            lost.append(await redis.delete(keys.catalog_events()))
            await send(redis, keys, updated(3))
        return found

    worker.reclaim = reclaim_then_lose
    await worker.run(asyncio.Event(), burst=True)
    assert applied == [1, 2, 3]
    assert worker.backoffs == 0, "a lost group is no outage"


async def test_a_traced_batch_gets_a_span_linked_to_each_events_trace_and_a_mark_per_applied_event(
    redis, keys, spans
):
    """With tracing on: one consumer span for the batch on this stream, linked to the traces
    the events carry; in each applied event's own trace a span naming its type and stream id;
    none for an event that failed, nor for one that carries no trace."""
    exporter, request_tracer = spans
    traceparents = []
    for _ in range(2):
        with request_tracer.start_as_current_span("PATCH /api/products/{id}"):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            traceparents.append(carrier["traceparent"])

    async def apply(events):
        if any(event.aggregate_id == 2 for event in events):
            raise ValueError("poison")

    worker = a_consumer(redis, keys, apply=apply)
    entries = [
        stream_fields(str(e.id), e.type, e.aggregate_id, e.version, encode(e).decode())
        for e in (updated(1), updated(2), updated(3))
    ]
    entries[0]["traceparent"], entries[1]["traceparent"] = traceparents
    ids = await send(redis, keys, *entries)
    await worker.run(asyncio.Event(), burst=True)

    finished = exporter.get_finished_spans()
    [batch] = [span for span in finished if span.name == "catalog-events process"]
    assert batch.kind == SpanKind.CONSUMER
    assert batch.attributes["messaging.destination.name"] == keys.catalog_events()
    assert batch.attributes["messaging.batch.message_count"] == 3
    trace_ids = [traceparent.split("-")[1] for traceparent in traceparents]
    assert [format(link.context.trace_id, "032x") for link in batch.links] == trace_ids
    [applied] = [span for span in finished if span.name == "catalog event applied"]
    assert format(applied.context.trace_id, "032x") == trace_ids[0]  # event 2 failed, 3 has no trace
    assert applied.attributes == {
        "messaging.system": "redis",
        "messaging.destination.name": keys.catalog_events(),
        "messaging.message.id": ids[0].decode(),
        "storefront.event.type": "product.updated",
    }


async def test_a_running_worker_keeps_its_own_heartbeat_and_a_refused_one_is_an_outage(
    redis, keys, monkeypatch
):
    """The heartbeat is the key other workers look up by this worker's name before taking its
    pending events; if Redis refuses to refresh it, that is reported as Redis's outage and the
    worker goes on."""
    worker = a_consumer(redis, keys, name="w-7")
    await worker.run(asyncio.Event(), burst=True)
    assert await redis.ttl(keys.worker_heartbeat("w-7")) > 0

    refreshing = redis.set

    async def refuse(name, *args, **kwargs):
        if name == keys.worker_heartbeat("w-7"):
            raise ConnectionResetError("connection reset by peer")
        return await refreshing(name, *args, **kwargs)

    monkeypatch.setattr(redis, "set", refuse)
    await send(redis, keys, updated(1))
    await worker.run(asyncio.Event(), burst=True)  # finishes: the failed refresh was not fatal
    assert worker.redis_outage.outages == 1  # said as Redis unreachable (and over once a read worked)


async def test_an_event_of_a_type_nobody_handles_is_left_pending_with_the_reason(redis, keys):
    worker = a_consumer(redis, keys)
    [message_id] = await send(redis, keys, new_event("product.renamed", 1, 2, {"id": 1}, ["name"]))
    await worker.run(asyncio.Event(), burst=True)
    reason = await redis.hget(keys.event_errors(), message_id)
    assert reason.endswith(b"ValueError: no handler for event type 'product.renamed'"), reason
