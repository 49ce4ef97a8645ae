"""The outbox relay (`python -m app_product.relay`): moves committed events to the Redis stream.

- Only one relay sends at a time: each holds (or waits for) a PostgreSQL advisory lock on its own
  connection. A standby blocks on the lock and takes over as soon as the active relay's
  connection goes away (the lock dies with it).
- It sends the rows not yet sent (`sent_at IS NULL`), in id order, in batches: one script call
  appending the whole batch (`shared.events.publish`: one round trip, one reply), then one
  UPDATE marking them sent. It never asks for "ids above the last one sent", so a row whose
  transaction committed late (a lower id, visible later) is still sent. If it dies between the
  append and the UPDATE, the batch is sent again: events are at least once, and the cart's
  handlers ignore what they have already applied.
- Every append first checks that the stream still holds what the relay sent before; when an
  idle relay polls, it checks too. After a Redis data loss, what was lost is sent again by
  itself (`app_product.outbox.healing`).
- It wakes on `NOTIFY storefront_outbox` (sent by every change at commit) and also polls, in
  case a notification is missed. Once a minute it trims the stream of what every consumer group
  has read and acknowledged (`shared.events.trim`). When Redis or PostgreSQL is down it retries
  with backoff, saying so once per outage; the rows simply stay unsent. After PostgreSQL comes
  back it connects again and takes (or waits for) the lock again. Sent rows are kept
  OUTBOX_RETENTION_HOURS, then pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence

import asyncpg
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app_product.outbox import repo
from app_product.outbox.healing import StreamGuard
from app_product.outbox.repo import OUTBOX_CHANNEL
from app_product.settings import CatalogSettings
from shared.events import partitions
from shared.events.envelope import stream_fields
from shared.events.partitions import partition_of
from shared.events.publish import Appended, StreamAppender
from shared.events.tracing import batch_span
from shared.events.trim import trim
from shared.keys import Keys, keys_for
from shared.outage import Outage
from shared.signals import sleep_unless_stopped
from shared.storage.postgres import DATABASE_UNAVAILABLE
from shared.storage.slots import grouped

log = logging.getLogger("app_product.relay")  # named: run as __main__, __name__ would not say

LOCK_KEY = int.from_bytes(hashlib.sha256(b"storefront.outbox-relay").digest()[:8], "big", signed=True)
_PRUNE_EVERY_SECONDS = 600.0
_TRIM_EVERY_SECONDS = 60.0
_MAX_BACKOFF_SECONDS = 30.0


class Partition:
    """One partition's stream, its appender and what the relay knows of it."""

    def __init__(self, redis: Redis, keys: Keys, partition: int) -> None:
        self.stream = keys.catalog_events(partition)
        self.appender = StreamAppender(redis, self.stream, keys.stream_epoch(partition))
        self.state = StreamGuard(self.stream)

    async def append(self, rows: Sequence[asyncpg.Record]) -> Appended:
        """Append `rows` in order (none: only check the stream), in a span linked to their traces."""
        entries = [
            stream_fields(
                row["event_id"],
                row["event_type"],
                row["aggregate_id"],
                row["aggregate_version"],
                row["payload"],
                row["trace_context"],
            )
            for row in rows
        ]
        traces = [row["trace_context"] or "" for row in rows]
        with batch_span("catalog-events publish", self.stream, traces, SpanKind.PRODUCER):
            return await self.appender.append(entries, self.state.guard)


class Relay:
    def __init__(self, settings: CatalogSettings, redis: Redis) -> None:
        self.keys = keys_for(settings)
        self.settings = settings
        self.redis = redis
        self.partitions = [Partition(redis, self.keys, i) for i in range(self.keys.partitions)]
        # The first partition's (the only one, by default): what tests and tools look at.
        self.stream, self.state = self.partitions[0].stream, self.partitions[0].state
        self._adopted = False
        self.redis_outage = Outage("Redis (relay)", log)
        self.database_outage = Outage("PostgreSQL (relay)", log)
        # For metrics: events sent, batches sent, entries trimmed, whether this relay holds the
        # lock (1) or stands by (0), and the time each batch took (given to `on_batch`).
        self.sent = self.batches = self.trimmed = 0
        self.active = False
        self.on_batch: Callable[[int, float], None] = lambda size, seconds: None

    async def send_batch(self, conn: asyncpg.Connection) -> int:
        """Send one batch of unsent rows, each to its aggregate's partition; how many (0 also
        after a loss was healed, or when nothing waits: then every stream was checked). Raises
        RedisError if Redis refuses."""
        started = time.perf_counter()
        if not self._adopted:  # the partition count, before the first append (see partitions)
            await partitions.adopt(self.redis, self.keys)
            self._adopted = True
        rows = await conn.fetch(repo.UNSENT, self.settings.relay_batch_size)
        count = len(self.partitions)
        by_partition = grouped(rows, lambda row: partition_of(row["aggregate_id"], count))
        # A partition with nothing to send is checked only when nothing waits at all (the
        # idle poll) or when the relay has no position in it yet (a first run, a heal).
        due = [
            (out, by_partition.get(i, []))
            for i, out in enumerate(self.partitions)
            if i in by_partition or not rows or not out.state.guard.last_id
        ]
        # In parallel: on a cluster the partitions are on different masters.
        results = await asyncio.gather(*(out.append(part) for out, part in due))
        sent = 0
        for (out, part), appended in zip(due, results, strict=True):
            if not appended.ok:
                await out.state.heal(conn, appended.last_id)
                self._adopted = False  # Redis lost data: the partition count it kept may be gone too
            elif part or not out.state.guard.last_id:
                # With no rows after a heal (or on the first run) the epoch was written; from
                # now on the stream is compared with how far it went then.
                await out.state.mark_sent(conn, [row["id"] for row in part], appended.last_id)
                sent += len(part)
        self.sent += sent
        if sent:
            self.batches += 1
            self.on_batch(sent, time.perf_counter() - started)
        return 0 if any(not ok.ok for ok in results) else sent

    def unsettled(self) -> bool:
        """A partition has no position yet (a first run, or a loss just healed)."""
        return any(not out.state.guard.last_id for out in self.partitions)

    @property
    def resent(self) -> int:
        return sum(out.state.resent for out in self.partitions)

    async def prune(self, conn: asyncpg.Connection) -> int:
        """Delete up to 10,000 rows sent longer ago than the retention; how many."""
        status = await conn.execute(repo.PRUNE, self.settings.outbox_retention_hours)
        return int(status.split()[-1])

    async def run(self, stop: asyncio.Event, *, burst: bool = False) -> None:
        """Be the relay until `stop` is set (or, with `burst`, until nothing is left to send),
        connecting again whenever PostgreSQL goes away."""
        backoff = 0.5
        while not stop.is_set():
            try:
                await self._session(stop, burst)
                return
            except DATABASE_UNAVAILABLE as exc:
                if not self.database_outage.down:
                    backoff = 0.5  # a new outage: the pauses start short again
                self.database_outage.failed(exc)  # the lock went with the session
                await sleep_unless_stopped(stop, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    async def _session(self, stop: asyncio.Event, burst: bool) -> None:
        """One connection's life: lead, then relay, until stopped (or the burst is over)."""
        # A relay killed while a statement runs (its UPDATE waiting on a row lock, say) would
        # keep its session, and with it the relay lock, until that statement ends: PostgreSQL
        # does not read the socket meanwhile. Checking the client every 2 s lets a standby
        # take over within seconds instead.
        conn = await asyncpg.connect(
            self.settings.database_url, server_settings={"client_connection_check_interval": "2s"}
        )
        try:
            self.database_outage.succeeded()
            if not await self._lead(conn, stop):
                return
            self.active = True
            for out in self.partitions:
                await out.state.load(conn)
            wake = asyncio.Event()
            await conn.add_listener(OUTBOX_CHANNEL, lambda *_: wake.set())
            await self._loop(conn, stop, wake, burst)
        finally:
            self.active = False
            with contextlib.suppress(*DATABASE_UNAVAILABLE):
                await conn.close()  # also releases the advisory lock

    async def _lead(self, conn: asyncpg.Connection, stop: asyncio.Event) -> bool:
        """Wait for the relay lock (a standby waits here); False if stopped first."""
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            log.info("relay active")
            return True
        log.info("another relay is active; standing by")
        locking = asyncio.ensure_future(conn.fetchval("SELECT pg_advisory_lock($1)", LOCK_KEY))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({locking, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not locking.done():
            locking.cancel()  # asyncpg cancels the waiting query on the server
            with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError):
                await locking
            return False
        await locking  # raises if the connection died while waiting
        log.info("relay active (took over)")
        return True

    async def _loop(
        self, conn: asyncpg.Connection, stop: asyncio.Event, wake: asyncio.Event, burst: bool
    ) -> None:
        # -inf: the first idle round prunes and trims (monotonic() counts from boot, and a
        # relay started on a fresh machine would otherwise wait until its uptime passed both).
        backoff, pruned_at, trimmed_at = 0.5, -math.inf, -math.inf
        while not stop.is_set():
            wake.clear()
            try:
                sent = await self.send_batch(conn)
            except (RedisError, OSError) as exc:
                if isinstance(exc, DATABASE_UNAVAILABLE) and conn.is_closed():
                    raise  # PostgreSQL went away: run() connects again
                self.redis_outage.failed(exc)  # the rows simply wait in the outbox
                await sleep_unless_stopped(stop, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            self.redis_outage.succeeded()
            backoff = 0.5
            if sent == self.settings.relay_batch_size or (sent == 0 and self.unsettled()):
                continue  # more may be waiting (or a loss was just healed): no pause
            if burst:
                return
            if time.monotonic() - pruned_at > _PRUNE_EVERY_SECONDS:
                await self.prune(conn)
                pruned_at = time.monotonic()
            if time.monotonic() - trimmed_at > _TRIM_EVERY_SECONDS:
                with contextlib.suppress(RedisError, OSError):  # trimming waits for the next round
                    for out in self.partitions:
                        self.trimmed += await trim(
                            self.redis, out.stream, self.settings.stream_retention_seconds
                        )
                trimmed_at = time.monotonic()
            await _wait_any(stop, wake, self.settings.relay_poll_seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Until a change is notified, the poll interval passes, or the relay is told to stop."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
