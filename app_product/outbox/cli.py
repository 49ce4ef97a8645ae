"""`python -m app_product.relay [--burst] | resend --since TIME`: run the outbox relay, or mark
the events sent since a time as unsent (the active relay sends them again; after a Redis data
loss the relay does this by itself, see app_product.outbox.healing)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

import asyncpg

from app_product.outbox import repo
from app_product.outbox.metrics import expose_relay
from app_product.outbox.relay import Relay
from app_product.outbox.repo import OUTBOX_CHANNEL
from app_product.settings import CatalogSettings
from shared.config import exit_on_settings_error, load_settings
from shared.events.partitions import PartitionsChanged
from shared.logs import configure_logging
from shared.signals import stop_on_signals
from shared.storage.postgres import connect_arguments
from shared.storage.redis_conn import RedisModeMismatch, check_mode, create_redis
from shared.telemetry.metrics import Metrics
from shared.telemetry.pools import expose_pools
from shared.telemetry.tracing import configure_tracing, shutdown_tracing


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
    await check_mode(settings)
    stop = stop_on_signals()
    redis = create_redis(settings)
    relay = Relay(settings, redis)
    # The backlog's probe has a connection of its own (min 0: none while nobody scrapes).
    probes = await asyncpg.create_pool(**connect_arguments(settings.database_url), min_size=0, max_size=1)
    metrics = Metrics()
    expose_relay(metrics, relay, probes)
    expose_pools(metrics, redis)
    if settings.metrics_port:
        metrics.listen(settings.metrics_host, settings.metrics_port)
    try:
        await relay.run(stop, burst=burst)
    finally:
        metrics.close()
        await probes.close()
        await redis.aclose()


def _aware_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z or +00:00)")
    return moment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app_product.relay", description="Run the outbox relay.")
    parser.add_argument("--burst", action="store_true", help="send what is waiting, then exit")
    commands = parser.add_subparsers(dest="command")
    again = commands.add_parser("resend", help="send again the events sent since a time (after a Redis loss)")
    again.add_argument("--since", required=True, type=_aware_time, help="ISO time, e.g. 2026-11-23T10:00Z")
    args = parser.parse_args(argv)
    with exit_on_settings_error("relay"):
        settings = load_settings(CatalogSettings)
    configure_logging(settings.log_level)
    configure_tracing("storefront-relay")
    if args.command == "resend":
        count = asyncio.run(resend(settings, args.since))
        print(f"resend: {count} event(s) marked unsent; the active relay sends them again")
        return 0
    try:
        asyncio.run(serve(settings, args.burst))
    except (PartitionsChanged, RedisModeMismatch) as exc:  # a setting to fix, not a crash: say so
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown_tracing()
    return 0


if __name__ == "__main__":
    sys.exit(main())
