"""A worker of one consumer group on the event stream: read, apply, acknowledge, and recover.

Generic: the service hands it `apply` (its handlers, applying a batch of events in one
transaction) and the event types it handles, as arq's worker takes its job functions.

It reads the stream in the group (`XREADGROUP`, in batches, blocking up to `block_seconds`);
several workers share the group, each event going to one of them. A batch is applied by one
`apply` call and acknowledged in one `XACK` after it returned. A batch that loses a race
(`races`: a deadlock, a serialization failure) is tried again whole; if it still fails, its
events are applied one by one, so one bad event cannot hold back the others: an event that
fails alone is not acknowledged and stays in the group's pending list, its error recorded, for
retry (`shared.events.reclaim`), and is parked as dead after `max_deliveries`. If what `apply`
writes to cannot be reached (it raises `DependencyDown`), nothing is recorded against the
events: the worker backs off, reads nothing more until `ready()` succeeds, then retries them.
SIGTERM lets the batch in hand finish and be acknowledged, then the worker exits. A background
task refreshes a heartbeat key every third of `heartbeat_seconds` (its TTL): once it expires,
other workers take over the worker's pending events. `burst` processes what is there and exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from shared.events.consumer_config import ConsumerConfig
from shared.events.dead_letters import DeadLetters
from shared.events.envelope import Event, decode
from shared.events.heartbeat import Heartbeat
from shared.events.reclaim import Message, Reclaimer
from shared.events.tracing import batch_span, mark_applied
from shared.keys import Keys
from shared.outage import Outage
from shared.signals import sleep_unless_stopped

log = logging.getLogger(__name__)

Apply = Callable[[Sequence[Event]], Awaitable[None]]
_MAX_BACKOFF_SECONDS = 30.0


class DependencyDown(Exception):
    """Raised by `apply` when what it writes to cannot be reached: not the events' fault."""


class Consumer:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        group: str,
        name: str,
        config: ConsumerConfig,
        *,
        apply: Apply,
        handles: Collection[str],
        ready: Callable[[], Awaitable[object]],
        races: tuple[type[BaseException], ...] = (),
        dependency: str = "the database",
        partition: int = 0,
        beats: bool = True,
    ) -> None:
        """One partition's consumer (`shared.events.partitions`); a worker runs one per
        partition, all under its one name, and only one of them (`beats`) keeps the heartbeat."""
        self.redis = redis
        self.group = group
        self.consumer = name
        self.config = config
        self.partition = partition
        self.stream = keys.catalog_events(partition)
        self.heartbeat = keys.worker_heartbeat(name)
        self.errors = keys.event_errors(partition)
        self._beats = beats
        self._apply_events = apply
        self.handles = handles
        self._ready = ready
        self._races = races
        self.dead_letters = DeadLetters(redis, keys, group, partition)
        self._reclaimer = Reclaimer(self, keys, self.dead_letters)
        # For metrics and tests: events applied and failed (and by type: the types this consumer
        # handles, anything else counted as "unknown"), backoffs by what was down, batches read
        # (size and seconds to apply, given to `on_batch`).
        self.applied = self.failed = self.backoffs = 0
        self.by_type: collections.Counter[tuple[str, str]] = collections.Counter()
        self.backoffs_by: collections.Counter[str] = collections.Counter()
        self.on_batch: Callable[[int, float], None] = lambda size, seconds: None

        self.redis_outage = Outage(f"Redis (worker {name})", log)
        self._heartbeat = Heartbeat(redis, self.heartbeat, config.heartbeat_seconds, self.redis_outage)
        self.dependency_outage = Outage(f"{dependency} (worker {name})", log)
        self._group_ready = False
        self._dependency_down = False

    @property
    def parked(self) -> int:
        return self._reclaimer.parked

    @property
    def retried(self) -> int:
        return self._reclaimer.retried

    def heartbeat_age(self) -> float:
        return self._heartbeat.age()

    async def ensure_group(self) -> None:
        """Create the group if needed, from the stream's start: handlers are idempotent, so
        a worker deployed after events were written applies them all, harmlessly."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def group_lost(self) -> None:
        """Redis lost the stream or the group (a restart without persistence): recreate it."""
        self._group_ready = False

    async def run(self, stop: asyncio.Event, *, burst: bool = False) -> None:
        if not self._beats:
            await self._loop(stop, burst)
            return
        done = asyncio.Event()
        beating = asyncio.create_task(self._heartbeat.keep(done))
        try:
            await self._loop(stop, burst)
        finally:
            # Told to stop, not cancelled: redis-py can turn a cancellation in mid-command into a
            # connection error, which the heartbeat loop would take for Redis being down.
            done.set()
            await beating

    async def reclaim(self) -> int:
        """Retry or park this group's failed and orphaned events (see shared.events.reclaim)."""
        return await self._reclaimer.reclaim()

    async def _loop(self, stop: asyncio.Event, burst: bool) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                more = await self._step(burst)
            except (RedisError, OSError, DependencyDown) as exc:
                # Unacknowledged events stay pending in Redis: nothing is lost while we wait, and
                # this worker's own reclaim retries them once it can go on. Said once per outage.
                self._dependency_down = isinstance(exc, DependencyDown)
                (self.dependency_outage if self._dependency_down else self.redis_outage).failed(exc)
                self.backoffs += 1
                self.backoffs_by["database" if self._dependency_down else "redis"] += 1
                await sleep_unless_stopped(stop, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            self.redis_outage.succeeded()
            self.dependency_outage.succeeded()
            backoff = 0.5
            if not more and burst:
                return

    async def _step(self, burst: bool) -> bool:
        """One read, its events applied and acknowledged; False when there was nothing to read."""
        if not self._group_ready:
            await self.ensure_group()
            self._group_ready = True
        if self._dependency_down:  # read nothing, retry nothing, until it answers
            try:
                await self._ready()
            except Exception as exc:
                raise DependencyDown(f"{type(exc).__name__}: {exc}") from exc
            self._dependency_down = False
        await self.reclaim()
        messages = await self._read(burst)
        if not messages:
            # After a lost group (NOGROUP) nothing was read, but the stream may hold events:
            # go round again (recreating it), even in a burst.
            return not self._group_ready
        started = time.perf_counter()
        done = await self.apply(messages)
        self.on_batch(len(messages), time.perf_counter() - started)
        if done:
            await self.redis.xack(self.stream, self.group, *done)
        return True

    async def _read(self, burst: bool) -> list[Message]:
        """The next batch of new messages for this consumer (blocking unless `burst`)."""
        # redis-py types the reply for every protocol version at once; this is RESP2's shape.
        try:
            reply: Any = await self.redis.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: ">"},
                count=self.config.batch_size,
                block=None if burst else int(self.config.block_seconds * 1000),
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                self.group_lost()
                return []
            raise
        return list(reply[0][1]) if reply else []

    async def apply(self, messages: Sequence[Message]) -> list[bytes]:
        """`_apply` in a span for the batch, linked to each event's trace, and a mark in each
        applied event's own trace (shared.events.tracing; nothing when tracing is off)."""
        traces = [fields.get(b"traceparent", b"").decode() for _, fields in messages]
        with batch_span("catalog-events process", self.stream, traces, SpanKind.CONSUMER):
            done = await self._apply(messages)
            if traces and any(traces):
                applied = set(done)
                mark_applied(
                    self.stream,
                    [
                        (trace, fields.get(b"type", b"").decode(), message_id.decode())
                        for (message_id, fields), trace in zip(messages, traces, strict=True)
                        if message_id in applied
                    ],
                )
        return done

    async def _apply(self, messages: Sequence[Message]) -> list[bytes]:
        """Apply messages; the ids of those applied (to acknowledge). An event that cannot be
        decoded, or has no handler, fails alone. The others are applied in one call (tried
        again after a lost race), or, if it fails, one by one, so that a poison event fails
        alone as well. DependencyDown is raised, not recorded: the events stay pending at this
        worker, which retries them once the dependency is back."""
        events: dict[bytes, Event] = {}
        for message_id, fields in messages:
            try:
                events[message_id] = self._decode(fields)
            except Exception as exc:  # a malformed entry must stay pending, not crash the worker
                await self._failed(message_id, exc)
        if len(events) > 1:
            try:
                await self._apply_batch(list(events.values()))
            except DependencyDown:
                raise  # one by one would fail as well, each event counted as a failure
            except Exception as exc:  # a poison event, or a lost race: find out which, alone
                log.warning("a batch of %d events failed (%s); applying them one by one", len(events), exc)
            else:
                self._count_applied(events.values())
                return list(events)
        return [
            message_id for message_id, event in events.items() if await self._apply_one(message_id, event)
        ]

    def _decode(self, fields: dict[bytes, bytes]) -> Event:
        event = decode(fields[b"event"])
        if event.type not in self.handles:
            raise ValueError(f"no handler for event type {event.type!r}")
        return event

    async def _apply_one(self, message_id: bytes, event: Event) -> bool:
        try:
            await self._apply_events([event])
        except DependencyDown:
            raise  # not the event's fault: nothing to record against it
        except Exception as exc:  # whatever failed, the event must stay pending, not crash the worker
            await self._failed(message_id, exc, event.type)
            return False
        self._count_applied([event])
        return True

    async def _apply_batch(self, events: list[Event]) -> None:
        """`apply`, tried again on a lost race (a deadlock, a serialization failure): that is a
        race with another transaction (a shopper's write, another worker's batch), not a bad
        event, and applying the batch one event at a time would cost a transaction per event."""
        for retries_left in range(self.config.race_retries, -1, -1):
            try:
                await self._apply_events(events)
                return
            except self._races as exc:
                if not retries_left:
                    raise
                log.warning("a batch of %d events lost a race (%s); trying it again", len(events), exc)

    def _count_applied(self, events: Iterable[Event]) -> None:
        for event in events:  # decoded, so of a type it handles (`_decode`)
            self.by_type[(event.type, "applied")] += 1
            self.applied += 1

    async def _failed(self, message_id: bytes, exc: Exception, type_: str = "unknown") -> None:
        """Leave the event pending (not acknowledged): retried later, parked as dead after too
        many tries. Its reason is recorded for the retry and for operators."""
        self.failed += 1
        self.by_type[(type_, "failed")] += 1  # "unknown", or a type `_decode` accepted
        reason = f"{type(exc).__name__}: {exc}"
        log.error("event %s failed: %s", message_id.decode(), reason)
        # If Redis refuses the record, the event is still retried: by this worker's own reclaim
        # (which skips nothing of its own), or by another once this worker's heartbeat expires.
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hset(self.errors, message_id, f"{datetime.now(UTC).isoformat()} {reason}")
