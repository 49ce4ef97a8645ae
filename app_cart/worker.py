"""`python -m app_cart.worker [--burst]`: apply catalog events to carts and wishlists.

Reads the catalog event stream in the consumer group `cart` (`XREADGROUP`, in batches, blocking
up to WORKER_BLOCK_SECONDS); several workers share the group, each event going to one of them.
A batch is applied in one transaction (handlers.py takes each type's events together, as
set-based SQL) and acknowledged in one `XACK` after it committed. A batch that loses a lock race
(a deadlock, a serialization failure) is tried again whole; if it still fails, its events are
applied one by one, each in its own transaction, so one bad event cannot hold back the others:
an event that fails alone is not acknowledged and stays in the group's pending list, its error
recorded, for retry. If the database cannot be reached, nothing is recorded against the events:
the worker backs off, reads nothing more until the database answers, then retries them (see
`reclaim`). SIGTERM lets the batch in hand finish and be acknowledged, then the worker exits. A
background task refreshes a heartbeat key every third of WORKER_HEARTBEAT_SECONDS (its TTL):
once it expires, other workers take over the worker's pending events. `--burst` processes what
is there and exits (for tests and scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from databases import Database
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app_cart.handlers import HANDLERS, Handler
from app_cart.settings import CartSettings
from shared.config import exit_on_settings_error, load_settings
from shared.db import DATABASE_UNAVAILABLE, create_database, ping
from shared.events import Event, decode
from shared.keys import CART_GROUP, DEAD_CONSUMER, Keys
from shared.logs import configure_logging
from shared.product_cache import ProductInvalidator
from shared.redis_conn import create_redis
from shared.scripts import load

log = logging.getLogger("app_cart.worker")

GROUP = CART_GROUP
DEAD = DEAD_CONSUMER  # holds parked events; the reclaim loop skips it
_PAGE = 100  # pending entries per XPENDING call in reclaim
_NOT_PARKED, _PARKED, _PAYLOAD_GONE = 0, 1, 2  # lua/park_event.lua's answers
_LOCK_RACES = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_LOCK_RACE_RETRIES = 3  # a batch that lost a lock race is tried this many more times at once
TOMBSTONE_SECONDS = 60.0


class DatabaseDown(Exception):
    """The cart database cannot be reached: the worker backs off, its events left pending."""


@contextlib.contextmanager
def _outage_as_database_down() -> Iterator[None]:
    try:
        yield
    except DATABASE_UNAVAILABLE as exc:
        raise DatabaseDown(f"{type(exc).__name__}: {exc}") from exc


class Worker:
    def __init__(self, settings: CartSettings, db: Database, redis: Redis, consumer: str) -> None:
        keys = Keys(settings.redis_key_prefix)
        self.settings = settings
        self.db = db
        self.redis = redis
        self.consumer = consumer
        self.stream = keys.catalog_events()
        self.heartbeat = keys.worker_heartbeat(consumer)
        self.cache = ProductInvalidator(redis, keys, TOMBSTONE_SECONDS)
        self._claim_script = load(redis, "claim_pending")
        self._park_script = load(redis, "park_event")
        self.errors = keys.event_errors()
        self.keys = keys
        self.applied = 0
        self.failed = 0
        self.parked = 0
        self._group_ready = False
        self._database_down = False

    async def ensure_group(self) -> None:
        """Create the group if needed, from the stream's start: handlers are idempotent, so
        a worker deployed after events were written applies them all, harmlessly."""
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event, *, burst: bool = False) -> None:
        done = asyncio.Event()
        beating = asyncio.create_task(self._keep_heartbeat(done))
        try:
            await self._loop(stop, burst)
        finally:
            # Told to stop, not cancelled: redis-py can turn a cancellation in mid-command into a
            # connection error, which the heartbeat loop would take for Redis being down.
            done.set()
            await beating

    async def _keep_heartbeat(self, done: asyncio.Event) -> None:
        """Refresh the heartbeat every third of its TTL until `done`, beside the loop rather than
        in it: a batch applied one event at a time can take longer than the TTL, and other
        workers must not take over events still in flight here."""
        ttl = self.settings.worker_heartbeat_seconds
        while not done.is_set():
            try:
                await self.redis.set(self.heartbeat, datetime.now(UTC).isoformat(), ex=ttl)
            except (RedisError, OSError) as exc:  # the loop reports Redis being down; try again
                log.warning("worker cannot refresh its heartbeat (%s)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), ttl / 3)

    async def _loop(self, stop: asyncio.Event, burst: bool) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                more = await self._step(burst)
            except (RedisError, OSError, DatabaseDown) as exc:
                # Unacknowledged events stay pending in Redis: nothing is lost while we wait, and
                # this worker's own reclaim retries them once it can go on.
                self._database_down = isinstance(exc, DatabaseDown)
                what = "the database" if self._database_down else "Redis"
                log.error("worker cannot reach %s (%s); retrying in %.1fs", what, exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            if not more and burst:
                return

    async def _step(self, burst: bool) -> bool:
        """One read, its events applied and acknowledged; False when there was nothing to read."""
        if not self._group_ready:
            await self.ensure_group()
            self._group_ready = True
        if self._database_down:  # read nothing, retry nothing, until the database answers
            with _outage_as_database_down():
                await ping(self.db)
            self._database_down = False
        await self.reclaim()
        messages = await self._read(burst)
        if not messages:
            return False
        done = await self._apply(messages)
        if done:
            await self.redis.xack(self.stream, GROUP, *done)
        return True

    async def reclaim(self) -> int:
        """Retry pending events that failed or whose worker died; park those delivered too often.

        A pending event is one of three things. It failed (its error is recorded): it is retried
        once idle for WORKER_RETRY_BASE_SECONDS, then twice as long after each further failure,
        so a dependency that is down is not hammered. Its worker died (the worker's heartbeat key
        expired): it is taken over the same way. Or another live worker is still applying it: it
        is left alone, so no event is applied twice. This worker's own entries are never in
        flight here (reclaim runs between batches), so they are retried like failed ones even
        with no error recorded: an XACK or an error record that was lost must not leave an event
        pending forever. Any worker may reclaim; the holder check in lua/claim_pending.lua lets
        only one of them have each event. Returns how many it handled.
        """
        handled = 0
        for owner in await self._holders():
            in_flight = owner != self.consumer and bool(
                await self.redis.exists(self.keys.worker_heartbeat(owner))
            )
            async for page in self._pending_pages(owner):
                errors: Any = await self.redis.hmget(self.errors, [entry["message_id"] for entry in page])
                for entry, error in zip(page, errors, strict=True):
                    if error is None and in_flight:
                        continue
                    handled += await self._reclaim_one(entry, owner)
        return handled

    async def _holders(self) -> list[str]:
        """The consumers holding pending events, but `dead`: listing by consumer, rather than
        the whole pending list, makes parked events (which stay pending under `dead`) cost
        nothing however many there are."""
        try:
            consumers: Any = await self.redis.xinfo_consumers(self.stream, GROUP)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost the stream: nothing is pending
                self._group_ready = False
                return []
            raise
        names = (consumer["name"].decode() for consumer in consumers if consumer["pending"])
        return [name for name in names if name != DEAD]

    async def _pending_pages(self, owner: str) -> AsyncIterator[list[Any]]:
        """`owner`'s pending entries idle for at least the first retry wait, a page at a time."""
        base_ms, start = self._retry_wait_ms(1), "-"
        while True:
            page: Any = await self.redis.xpending_range(
                self.stream, GROUP, start, "+", _PAGE, consumername=owner, idle=base_ms
            )
            if page:
                yield page
            if len(page) < _PAGE:
                return
            start = "(" + page[-1]["message_id"].decode()  # exclusive: the next page

    async def _reclaim_one(self, entry: dict[str, Any], owner: str) -> int:
        """Park the entry if it was delivered too often, else retry it once its wait is over."""
        deliveries, idle = int(entry["times_delivered"]), int(entry["time_since_delivered"])
        wait_ms = self._retry_wait_ms(deliveries)
        if deliveries >= self.settings.worker_max_deliveries:
            return await self._park(entry["message_id"], owner, deliveries, self._retry_wait_ms(1))
        if idle >= wait_ms:
            return await self._retry(entry["message_id"], owner, deliveries, wait_ms)
        return 0

    def _retry_wait_ms(self, deliveries: int) -> int:
        """How long an event delivered `deliveries` times waits before its next try."""
        return int(self.settings.worker_retry_base_seconds * 1000 * 2 ** (deliveries - 1))

    async def _claim(
        self, message_id: bytes, owner: str, to: str, min_idle_ms: int
    ) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        """Move a pending event from `owner` to `to` if `owner` still holds it and it has been
        idle `min_idle_ms` (lua/claim_pending.lua): the listing it was chosen from may be stale.
        The event with its fields; with None if its payload is gone (then it is not claimed,
        as XCLAIM would drop it: the caller parks it); or nothing."""
        reply: Any = await self._claim_script(
            keys=[self.stream], args=[GROUP, message_id, owner, to, min_idle_ms]
        )
        return [
            (entry_id, dict(zip(fields[::2], fields[1::2], strict=True)) if fields else None)
            for entry_id, fields in reply
        ]

    async def _retry(self, message_id: bytes, owner: str, deliveries: int, min_idle_ms: int) -> int:
        claimed = await self._claim(message_id, owner, self.consumer, min_idle_ms)
        if not claimed:
            return 0
        [(claimed_id, fields)] = claimed
        if fields is None:  # trimmed before it was applied: nothing to retry, only a record to keep
            return await self._park(message_id, owner, deliveries, min_idle_ms)
        if await self._apply([(claimed_id, fields)]):
            # One MULTI: an acknowledged event never keeps an error that reads as still failing.
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.stream, GROUP, claimed_id)
                pipe.hdel(self.errors, claimed_id)
                await pipe.execute()
        return 1

    async def _park(self, message_id: bytes, owner: str, deliveries: int, min_idle_ms: int) -> int:
        """Move an event from `owner` to the consumer `dead`, with what an operator needs beside it,
        in one script (lua/park_event.lua), so no crash can leave a dead entry without its record.

        Of two workers that listed the same event, only the first finds it still held by `owner`:
        one parks and records it, the other gets nothing, however long it has since lain dead."""
        text_id = message_id.decode()
        reply: Any = await self._park_script(
            keys=[self.stream, self.errors, self.keys.dead_event(text_id)],
            args=[GROUP, text_id, owner, DEAD, min_idle_ms, deliveries, datetime.now(UTC).isoformat()],
        )
        if reply[0] == _NOT_PARKED:
            return 0
        self.parked += 1
        error = reply[1].decode()
        if reply[0] == _PAYLOAD_GONE:
            log.critical(
                "event %s was trimmed from the stream before it was applied; it is lost but for its"
                " record (HGETALL %s): %s",
                text_id,
                self.keys.dead_event(text_id),
                error,
            )
        else:
            log.error("event %s parked as dead after %d deliveries: %s", text_id, deliveries, error)
        return 1

    async def _read(self, burst: bool) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """The next batch of new messages for this consumer (blocking unless `burst`)."""
        # redis-py types the reply for every protocol version at once; this is RESP2's shape.
        try:
            reply: Any = await self.redis.xreadgroup(
                GROUP,
                self.consumer,
                {self.stream: ">"},
                count=self.settings.worker_batch_size,
                block=None if burst else int(self.settings.worker_block_seconds * 1000),
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost the stream (a restart without persistence)
                self._group_ready = False
                return []
            raise
        return list(reply[0][1]) if reply else []

    async def _apply(self, messages: list[tuple[bytes, dict[bytes, bytes]]]) -> list[bytes]:
        """Apply messages; the ids of those applied (to acknowledge). An event that cannot be
        decoded, or has no handler, fails alone. The others are applied in one transaction
        (tried again after a lost lock race), or, if it fails, one by one, so that a poison
        event fails alone as well. DatabaseDown is raised, not recorded: the events stay
        pending at this worker, which retries them once the database is back."""
        events: dict[bytes, Event] = {}
        for message_id, fields in messages:
            try:
                events[message_id] = _decode(fields)
            except Exception as exc:  # a malformed entry must stay pending, not crash the worker
                await self._failed(message_id, exc)
        if len(events) > 1:
            try:
                await self._commit_batch(list(events.values()))
            except DatabaseDown:
                raise  # one by one would fail as well, each event counted as a failure
            except Exception as exc:  # a poison event, or a deadlock: find out which, alone
                log.warning("a batch of %d events failed (%s); applying them one by one", len(events), exc)
            else:
                self.applied += len(events)
                return list(events)
        return [
            message_id for message_id, event in events.items() if await self._apply_one(message_id, event)
        ]

    async def _apply_one(self, message_id: bytes, event: Event) -> bool:
        try:
            await self._commit([event])
        except DatabaseDown:
            raise  # not the event's fault: nothing to record against it
        except Exception as exc:  # whatever failed, the event must stay pending, not crash the worker
            await self._failed(message_id, exc)
            return False
        self.applied += 1
        return True

    async def _commit_batch(self, events: list[Event]) -> None:
        """`_commit`, tried again on a deadlock or a serialization failure: those are a race with
        another transaction (a shopper's write, another worker's batch), not a bad event, and
        applying the batch one event at a time would cost a transaction per event."""
        for retries_left in range(_LOCK_RACE_RETRIES, -1, -1):
            try:
                await self._commit(events)
                return
            except _LOCK_RACES as exc:
                if not retries_left:
                    raise
                log.warning("a batch of %d events lost a lock race (%s); trying it again", len(events), exc)

    async def _commit(self, events: list[Event]) -> None:
        """Events in one transaction, each handler given all of its events at once."""
        by_handler: dict[Handler, list[Event]] = {}
        for event in events:
            by_handler.setdefault(HANDLERS[event.type], []).append(event)
        with _outage_as_database_down():
            async with self.db.transaction():
                for handler, its_events in by_handler.items():
                    await handler(self.db, self.cache, its_events)

    async def _failed(self, message_id: bytes, exc: Exception) -> None:
        """Leave the event pending (not acknowledged): retried later, parked as dead after too
        many tries. Its reason is recorded for the retry and for operators."""
        self.failed += 1
        reason = f"{type(exc).__name__}: {exc}"
        log.error("event %s failed: %s", message_id.decode(), reason)
        # If Redis refuses the record, the event is still retried: by this worker's own reclaim
        # (which skips nothing of its own), or by another once this worker's heartbeat expires.
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hset(self.errors, message_id, f"{datetime.now(UTC).isoformat()} {reason}")


def _decode(fields: dict[bytes, bytes]) -> Event:
    event = decode(fields[b"event"])
    if event.type not in HANDLERS:
        raise ValueError(f"no handler for event type {event.type!r}")
    return event


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def serve(settings: CartSettings, burst: bool) -> Worker:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    db = create_database(settings)
    redis = create_redis(settings, blocking_seconds=settings.worker_block_seconds)
    await db.connect()
    worker = Worker(settings, db, redis, consumer_name())
    try:
        await worker.run(stop, burst=burst)
    finally:
        await redis.delete(worker.heartbeat)
        await db.disconnect()
        await redis.aclose()
    return worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app_cart.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="process what is waiting, then exit")
    args = parser.parse_args(argv)
    with exit_on_settings_error("worker"):
        settings = load_settings(CartSettings)
    configure_logging(settings.log_level)
    worker = asyncio.run(serve(settings, args.burst))
    log.info("worker stopped: %d event(s) applied, %d failed", worker.applied, worker.failed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
