"""The cart's event worker, `python -m app_cart.worker [--burst]`: apply catalog events to carts.

The generic consumer (`shared.events.consumer`) reads the catalog event stream in the group
`cart` and retries, parks and takes over events; this module gives it the cart's part: the
handlers (`app_cart.worker.handlers`), applied in one transaction per batch, with the cache
invalidator they re-apply, and the database it waits for in an outage. SIGTERM lets the batch in
hand finish and be acknowledged. `--burst` processes what is there and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Sequence

import asyncpg
from databases import Database
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app_cart.adapters.catalog_client import ProductClient, catalog_client
from app_cart.settings import CartSettings
from app_cart.worker.deps import Deps
from app_cart.worker.handlers import HANDLERS, apply
from app_cart.worker.refresh import Catalog
from app_cart.worker.sweep import Sweep
from shared.config import exit_on_settings_error, load_settings
from shared.events.consumer import Consumer
from shared.events.consumer_config import ConsumerConfig
from shared.events.envelope import Event
from shared.events.metrics import expose_consumer, expose_stream
from shared.events.partitions import PartitionsChanged, check_worker
from shared.events.status import stream_statuses
from shared.keys import CART_GROUP, Keys, keys_for
from shared.logs import configure_logging
from shared.resilience.invalidation import ProductInvalidator
from shared.resilience.metrics import expose_breaker, expose_cache
from shared.signals import sleep_unless_stopped, stop_on_signals
from shared.storage.postgres import connect, create_database, ping
from shared.storage.redis_conn import RedisModeMismatch, check_mode, create_redis
from shared.telemetry.metrics import Metrics
from shared.telemetry.pools import expose_pools
from shared.telemetry.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger("app_cart.worker")  # named: run as __main__, __name__ would not say

TOMBSTONE_SECONDS = 60.0
# A deadlock or a serialization failure is a race with another transaction (a shopper's write,
# another worker's batch), not a bad event: the consumer tries the batch again whole.
LOCK_RACES = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


def consumer_config(settings: CartSettings) -> ConsumerConfig:
    return ConsumerConfig(
        batch_size=settings.worker_batch_size,
        block_seconds=settings.worker_block_seconds,
        retry_base_seconds=settings.worker_retry_base_seconds,
        max_deliveries=settings.worker_max_deliveries,
        heartbeat_seconds=settings.worker_heartbeat_seconds,
    )


def cart_worker(
    settings: CartSettings,
    db: Database,
    redis: Redis,
    name: str,
    catalog: Catalog,
    *,
    partition: int = 0,
    beats: bool = True,
) -> Consumer:
    """A consumer in the group `cart` named `name`, applying events with the cart's handlers,
    on one partition of the stream (keeping the worker's heartbeat if `beats`)."""
    keys = keys_for(settings)
    deps = Deps(db, ProductInvalidator(redis, keys, TOMBSTONE_SECONDS), catalog)

    async def apply_events(events: Sequence[Event]) -> None:
        await apply(deps, events)

    return Consumer(
        redis,
        keys,
        CART_GROUP,
        name,
        consumer_config(settings),
        apply=apply_events,
        handles=HANDLERS,
        ready=lambda: ping(db),
        races=LOCK_RACES,
        dependency="PostgreSQL",
        partition=partition,
        beats=beats,
    )


def cart_workers(
    settings: CartSettings, db: Database, redis: Redis, name: str, catalog: Catalog
) -> list[Consumer]:
    """A worker's consumers: one per partition (each with its own group read, so a busy
    partition cannot starve the others), under one name and one heartbeat."""
    return [
        cart_worker(settings, db, redis, name, catalog, partition=i, beats=i == 0)
        for i in range(settings.stream_partitions)
    ]


def worker_metrics(
    settings: CartSettings,
    workers: list[Consumer],
    sweep: Sweep,
    catalog: ProductClient,
    db: Database,
    redis: Redis,
) -> Metrics:
    """What the worker process tells Prometheus (on METRICS_PORT, if set): its own counts, the
    stream and group as Redis has them, the sweep, the breaker and cache of its catalog client."""
    keys = keys_for(settings)
    metrics = Metrics()
    expose_consumer(metrics, *workers)
    expose_stream(metrics, *stream_statuses(redis, keys, CART_GROUP))
    metrics.counter(
        "storefront_sweep_runs", "Anti-entropy sweeps this worker completed.", lambda: sweep.sweeps
    )
    metrics.counter(
        "storefront_sweep_repairs",
        "Products whose cart and wishlist snapshots this worker's sweeps repaired.",
        lambda: sweep.repaired,
    )
    expose_breaker(metrics, catalog.breaker, redis, keys)
    expose_cache(metrics, catalog.cache)
    expose_pools(metrics, redis, db)
    if settings.metrics_port:
        metrics.listen(settings.metrics_host, settings.metrics_port)
    return metrics


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def serve(settings: CartSettings, burst: bool) -> list[Consumer]:
    await check_mode(settings)
    stop = stop_on_signals()
    db = create_database(settings)
    redis = create_redis(settings, blocking_seconds=settings.worker_block_seconds)
    await connect(db)  # opens empty if the database is down: the worker waits for it
    catalog = catalog_client(settings, redis)
    workers = cart_workers(settings, db, redis, consumer_name(), catalog)
    sweep = Sweep(db, settings.database_url, catalog, settings.sweep_page_size)
    metrics = worker_metrics(settings, workers, sweep, catalog, db, redis)
    sweeping = None
    if settings.sweep_interval_seconds and not burst:
        sweeping = asyncio.create_task(sweep.run(stop, settings.sweep_interval_seconds))
    try:
        await _check_partitions(redis, keys_for(settings), stop)
        await asyncio.gather(*(worker.run(stop, burst=burst) for worker in workers))
    finally:
        metrics.close()
        stop.set()
        if sweeping is not None:
            await sweeping
        with contextlib.suppress(RedisError, OSError):  # Redis may be down as we stop
            await redis.delete(workers[0].heartbeat)
        await catalog.aclose()
        await db.disconnect()
        await redis.aclose()
    return workers


async def _check_partitions(redis: Redis, keys: Keys, stop: asyncio.Event) -> None:
    """Refuse a STREAM_PARTITIONS other than the one in force; wait out a Redis outage (the
    consumers would wait for it too)."""
    while not stop.is_set():
        try:
            await check_worker(redis, keys)
            return
        except (RedisError, OSError) as exc:
            log.warning("cannot read the partition count in force yet: %s", exc)
            await sleep_unless_stopped(stop, 1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app_cart.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="process what is waiting, then exit")
    args = parser.parse_args(argv)
    with exit_on_settings_error("worker"):
        settings = load_settings(CartSettings)
    configure_logging(settings.log_level)
    configure_tracing("storefront-worker")
    try:
        workers = asyncio.run(serve(settings, args.burst))
    except (PartitionsChanged, RedisModeMismatch) as exc:  # a setting to fix, not a crash: say so
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown_tracing()
    applied, failed = sum(w.applied for w in workers), sum(w.failed for w in workers)
    log.info("worker stopped: %d event(s) applied, %d failed", applied, failed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
