"""The event path end to end, for scripts/bench_worker (`e2e`) and scripts/bench_cluster (`e2e`).

10,000 product updates are written once through the catalog's service functions (so the outbox
rows are what the catalog commits); each round then marks them unsent and starts the relay and
two workers as processes (`python -m app_product.relay`, `python -m app_cart.worker`), with keys
under a prefix of the round's own, and times the relay taking over until every cart item holds
its product's last version.

- `phase_end_to_end` (bench_worker): on one Redis, against the Redis path alone (pipelined XADD
  of the same entries by 100, then the raw read-and-acknowledge loop).
- `phase_partitions` (bench_cluster): on a single Redis and on a 3+3 cluster, each with
  STREAM_PARTITIONS=1 and 3, the four alternating round by round; ratios cluster / single and
  3 / 1 partitions.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import asyncpg

from app_product.app import open_catalog
from app_product.catalog import products
from app_product.catalog.models import ProductPatch
from app_product.outbox.relay import LOCK_KEY as RELAY_LOCK
from app_product.settings import CatalogSettings
from devtools.bench.common import service_env, xadd_pipelined
from devtools.bench.events_data import (
    CARTS,
    EVENTS,
    PRODUCTS,
    ROUNDS,
    VERSIONS,
    Fields,
    poll,
    processes,
    raw_consume,
    reset_items,
    sql,
)
from devtools.bench.targets import Target
from shared.config import load_settings
from shared.events.envelope import stream_fields
from shared.http.versioning import ExpectedVersion

WRITERS, WORKERS = 8, 2
PARTITIONS = (1, 3)


async def write_updates(catalog_db: str, redis_url: str) -> float:
    """VERSIONS price changes of every product through products.update_product; the seconds."""
    await sql(
        catalog_db,
        "INSERT INTO products (sku, name, price, stock)"
        " SELECT 'S' || n, 'p', 1, 5 FROM generate_series(1, $1) AS n",
        PRODUCTS,
    )
    settings = load_settings(CatalogSettings, service_env(catalog_db, redis_url, "bench-catalog"))
    async with open_catalog(settings) as catalog:

        async def writer(k: int) -> None:  # the products p with p % WRITERS == k, version after version
            for version in range(1, VERSIONS + 1):
                for product_id in range(k + 1, PRODUCTS + 1, WRITERS):
                    patch = ProductPatch(price=f"{version + 1}.00")
                    await products.update_product(catalog, product_id, patch, ExpectedVersion(version, False))

        started = time.perf_counter()
        await asyncio.gather(*(writer(k) for k in range(WRITERS)))
        return time.perf_counter() - started


async def outbox_entries(catalog_db: str) -> list[Fields]:
    conn = await asyncpg.connect(catalog_db)
    try:
        rows = await conn.fetch(
            "SELECT event_id::text, event_type, aggregate_id, aggregate_version, payload::text"
            " FROM outbox ORDER BY id"
        )
    finally:
        await conn.close()
    return [stream_fields(*row) for row in rows]


async def e2e_round(
    catalog_db: str, cart_db: str, target: Target, prefix: str, partitions: int = 1
) -> tuple[float, float]:
    """Seconds from the relay taking over until every cart item holds its product's last
    version, and the CPU seconds the Redis set-up used meanwhile.

    The relay starts as a standby (this script holds its lock), so the time counts neither
    interpreter starts nor imports: it begins when the lock is released, as at a takeover."""
    await sql(catalog_db, "UPDATE outbox SET sent_at = NULL")
    await reset_items(cart_db)
    catalog, cart = await asyncpg.connect(catalog_db), await asyncpg.connect(cart_db)
    redis = target.client()
    heartbeats = target.keys(prefix).worker_heartbeat("*")

    def env(database_url: str) -> dict[str, str]:
        # No anti-entropy sweep: it asks a catalog, which is not running here, so it would only
        # fail (and log it) during the measured window; it is no part of the event path.
        sweep = {"SWEEP_INTERVAL_SECONDS": "0"}
        return {**service_env(database_url, target.url, prefix), **target.env(partitions), **sweep}

    async def ready() -> bool:
        # A heartbeat a worker process (whatever its partitions), and the relay waiting for the lock.
        beats = [key async for key in redis.scan_iter(match=heartbeats)]
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        return len(beats) == WORKERS and await catalog.fetchval(waiting) == 1

    async def applied() -> bool:
        behind = "SELECT count(*) FROM cart_items WHERE product_version < $1"
        return bool(await cart.fetchval(behind, VERSIONS + 1) == 0)

    try:
        await catalog.execute("SELECT pg_advisory_lock($1)", RELAY_LOCK)
        workers = [("app_cart.worker", env(cart_db))] * WORKERS
        with processes(*workers, ("app_product.relay", env(catalog_db))):
            await poll(ready, 30)
            started, redis_cpu = time.perf_counter(), target.cpu_seconds()
            await catalog.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK)
            done = await poll(applied, 120)
            redis_cpu = target.cpu_seconds() - redis_cpu
    finally:
        await catalog.close()
        await cart.close()
        await redis.aclose()
    return done - started, redis_cpu


async def phase_end_to_end(catalog_db: str, cart_db: str, target: Target) -> None:
    print(f"\n== end to end: {EVENTS} product updates, {PRODUCTS} products in {CARTS} carts")
    seconds = await write_updates(catalog_db, target.url)
    print(f"  catalog writes (products.update_product, {WRITERS} writers): {EVENTS / seconds:,.0f} updates/s")
    entries = await outbox_entries(catalog_db)
    rates, raw_rates = [], []
    redis = target.client()
    try:
        for round_ in range(1, ROUNDS + 1):
            rates.append(EVENTS / (await e2e_round(catalog_db, cart_db, target, f"be2e{round_}"))[0])
            raw_stream = target.keys(f"be2e-raw{round_}").catalog_events()
            raw_seconds = await xadd_pipelined(redis, raw_stream, entries)
            raw_rates.append(EVENTS / (raw_seconds + await raw_consume(redis, raw_stream, EVENTS)))
            print(
                f"  round {round_}: relay and 2 workers {rates[-1]:,.0f} events/s,"
                f" Redis path alone {raw_rates[-1]:,.0f}/s, ratio {rates[-1] / raw_rates[-1]:.3f}"
            )
    finally:
        await redis.aclose()
    rate, raw = statistics.median(rates), statistics.median(raw_rates)
    print(
        f"end to end (medians): {rate:,.0f} events/s (target: at least 5,000) vs the Redis path alone"
        f" (XADD by 100, then XREADGROUP + XACK) {raw:,.0f}/s: ratio {rate / raw:.3f}"
    )


async def phase_partitions(catalog_db: str, cart_db: str, targets: tuple[Target, Target]) -> None:
    print(
        f"\n== end to end: {EVENTS:,} product updates (relay -> stream -> {WORKERS} workers -> carts),"
        f" single Redis vs 3+3 cluster, STREAM_PARTITIONS {' and '.join(map(str, PARTITIONS))}"
    )
    await write_updates(catalog_db, targets[0].url)
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {
        (target.name, p): [] for target in targets for p in PARTITIONS
    }
    for round_ in range(1, ROUNDS + 1):
        line = []
        for target in targets:
            for p in PARTITIONS:
                prefix = f"bp{round_}-{target.name}-{p}"
                seconds, redis_cpu = await e2e_round(catalog_db, cart_db, target, prefix, p)
                runs[target.name, p].append((EVENTS / seconds, redis_cpu / EVENTS * 1e6))
                line.append(f"{target.name}/{p} {EVENTS / seconds:,.0f}")
        print(f"  round {round_} (events/s, set-up/partitions): {', '.join(line)}")
    rate = {key: statistics.median(r for r, _ in each) for key, each in runs.items()}
    cpu = {key: statistics.median(c for _, c in each) for key, each in runs.items()}
    for key in runs:
        print(
            f"  {key[0]}, {key[1]} partition(s): {rate[key]:,.0f} events/s (median),"
            f" Redis CPU {cpu[key]:.0f} us per event (every node)"
        )
    for p in PARTITIONS:
        print(f"cluster/single, {p} partition(s): {rate['cluster', p] / rate['single', p]:.2f}")
    low, high = PARTITIONS
    for target in targets:
        name = target.name
        print(f"{name}, {high} partitions / {low}: {rate[name, high] / rate[name, low]:.2f}")
