"""The outbox relay: `python -m app_product.relay` moves committed events to the Redis stream.

- Only one relay sends at a time: each holds (or waits for) a PostgreSQL advisory lock on its own
  connection. A standby blocks on the lock and takes over as soon as the active relay's
  connection goes away (the lock dies with it).
- It sends the rows not yet sent (`sent_at IS NULL`), in id order, in batches: one script call
  XADDing the whole batch (`stream_append.lua`: one round trip, one reply), then one UPDATE
  marking them sent. It never asks for "ids above the last one sent", so a row whose
  transaction committed late (a lower id, visible later) is still sent. If it dies between the
  XADD and the UPDATE, the batch is sent again: events are at least once, and the cart's
  handlers ignore what they have already applied.
- It wakes on `NOTIFY storefront_outbox` (sent by every change at commit) and also polls, in
  case a notification is missed. Once a minute it trims the stream of what every consumer group
  has read and acknowledged (shared/events/trim.py). When Redis is down it retries with
  backoff; the rows simply stay unsent. Sent rows are kept OUTBOX_RETENTION_HOURS, then pruned.
- After a Redis data loss, `python -m app_product.relay resend --since 2026-11-23T10:00:00Z`
  marks the rows sent since then as unsent again, and the active relay sends them again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import sys
import time
from datetime import datetime

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app_product.outbox import repo
from app_product.outbox.repo import OUTBOX_CHANNEL
from app_product.settings import CatalogSettings
from shared.config import exit_on_settings_error, load_settings
from shared.events.envelope import stream_fields
from shared.events.publish import StreamAppender
from shared.events.trim import trim
from shared.keys import Keys
from shared.logs import configure_logging
from shared.signals import sleep_unless_stopped, stop_on_signals
from shared.storage.redis_conn import create_redis

log = logging.getLogger("app_product.relay")  # named: run as __main__, __name__ would not say

_LOCK_KEY = int.from_bytes(hashlib.sha256(b"storefront.outbox-relay").digest()[:8], "big", signed=True)
_PRUNE_EVERY_SECONDS = 600.0
_TRIM_EVERY_SECONDS = 60.0
_MAX_BACKOFF_SECONDS = 30.0


class Relay:
    def __init__(self, settings: CatalogSettings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.stream = Keys(settings.redis_key_prefix).catalog_events()
        self._stream = StreamAppender(redis, self.stream)
        self.sent = 0  # events sent by this process

    async def send_batch(self, conn: asyncpg.Connection) -> int:
        """Send one batch of unsent rows; how many. Raises RedisError if Redis refuses."""
        rows = await conn.fetch(repo.UNSENT, self.settings.relay_batch_size)
        if not rows:
            return 0
        entries = [
            stream_fields(
                row["event_id"],
                row["event_type"],
                row["aggregate_id"],
                row["aggregate_version"],
                row["payload"],
            )
            for row in rows
        ]
        await self._stream.append(entries)  # raises before anything is marked sent
        await conn.execute(repo.MARK_SENT, [row["id"] for row in rows])
        self.sent += len(rows)
        return len(rows)

    async def prune(self, conn: asyncpg.Connection) -> int:
        """Delete up to 10,000 rows sent longer ago than the retention; how many."""
        status = await conn.execute(repo.PRUNE, self.settings.outbox_retention_hours)
        return int(status.split()[-1])

    async def run(self, stop: asyncio.Event, *, burst: bool = False) -> None:
        """Be the relay until `stop` is set (or, with `burst`, until nothing is left to send)."""
        # A relay killed while a statement runs (its UPDATE waiting on a row lock, say) would
        # keep its session, and with it the relay lock, until that statement ends: PostgreSQL
        # does not read the socket meanwhile. Checking the client every 2 s lets a standby
        # take over within seconds instead.
        conn = await asyncpg.connect(
            self.settings.database_url, server_settings={"client_connection_check_interval": "2s"}
        )
        try:
            if not await self._lead(conn, stop):
                return
            wake = asyncio.Event()
            await conn.add_listener(OUTBOX_CHANNEL, lambda *_: wake.set())
            await self._loop(conn, stop, wake, burst)
        finally:
            await conn.close()  # also releases the advisory lock

    async def _lead(self, conn: asyncpg.Connection, stop: asyncio.Event) -> bool:
        """Wait for the relay lock (a standby waits here); False if stopped first."""
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
            log.info("relay active")
            return True
        log.info("another relay is active; standing by")
        locking = asyncio.ensure_future(conn.fetchval("SELECT pg_advisory_lock($1)", _LOCK_KEY))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({locking, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not locking.done():
            locking.cancel()  # asyncpg cancels the waiting query on the server
            with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError):
                await locking
            return False
        log.info("relay active (took over)")
        return True

    async def _loop(
        self, conn: asyncpg.Connection, stop: asyncio.Event, wake: asyncio.Event, burst: bool
    ) -> None:
        backoff, redis_down, pruned_at, trimmed_at = 0.5, False, 0.0, 0.0
        while not stop.is_set():
            wake.clear()
            try:
                sent = await self.send_batch(conn)
            except (RedisError, OSError) as exc:
                if not redis_down:
                    log.error("relay cannot reach Redis (%s); events wait in the outbox", exc)
                    redis_down = True
                await sleep_unless_stopped(stop, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            if redis_down:
                log.warning("relay reaches Redis again")
                redis_down, backoff = False, 0.5
            if sent == self.settings.relay_batch_size:
                continue  # more may be waiting: no pause
            if burst:
                return
            if time.monotonic() - pruned_at > _PRUNE_EVERY_SECONDS:
                await self.prune(conn)
                pruned_at = time.monotonic()
            if time.monotonic() - trimmed_at > _TRIM_EVERY_SECONDS:
                with contextlib.suppress(RedisError, OSError):  # trimming waits for the next round
                    await trim(self.redis, self.stream, self.settings.stream_retention_seconds)
                trimmed_at = time.monotonic()
            await _wait_any(stop, wake, self.settings.relay_poll_seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Until a change is notified, the poll interval passes, or the relay is told to stop."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()


async def resend(settings: CatalogSettings, since: datetime) -> int:
    """Mark the events sent since `since` as unsent: the active relay sends them again."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        status = await conn.execute(repo.RESEND, since)
        await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")
    finally:
        await conn.close()
    return int(status.split()[-1])


async def serve(settings: CatalogSettings, burst: bool) -> None:
    stop = stop_on_signals()
    redis = create_redis(settings)
    try:
        await Relay(settings, redis).run(stop, burst=burst)
    finally:
        await redis.aclose()


def _aware_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z or +00:00)")
    return moment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app_product.relay", description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="send what is waiting, then exit")
    commands = parser.add_subparsers(dest="command")
    again = commands.add_parser("resend", help="send again the events sent since a time (after a Redis loss)")
    again.add_argument("--since", required=True, type=_aware_time, help="ISO time, e.g. 2026-11-23T10:00Z")
    args = parser.parse_args(argv)
    with exit_on_settings_error("relay"):
        settings = load_settings(CatalogSettings)
    configure_logging(settings.log_level)
    if args.command == "resend":
        count = asyncio.run(resend(settings, args.since))
        print(f"resend: {count} event(s) marked unsent; the active relay sends them again")
        return 0
    asyncio.run(serve(settings, args.burst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
