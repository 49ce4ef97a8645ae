"""Benchmark the cart's event worker and the event path end to end (run it with scripts/bench_worker).

Starts throwaway PostgreSQL (the dev servers' fast mode: fsync and synchronous_commit off) and
Redis, migrates a catalog and two cart databases, and puts 1,000 products in 1,000 carts (10
items a cart, each product in 10 carts; set up by SQL: devtools/bench/events_data.py). Then,
each phase in the same run:

- `worker`: 10,000 product.updated events (10 versions of each product) in the stream, applied
  by the real worker (`cart_worker`) in-process (`--burst` semantics), against a raw loop of
  `XREADGROUP COUNT 100` and one `XACK` over the same entries, in a group of its own, on the same Redis. The
  figure is the ratio of the medians of 3 rounds. A last, shorter round times the worker
  applying each event in its own transaction, as it did before batching.
- `e2e` (devtools/bench/e2e.py): 10,000 product updates written through the catalog's service
  functions (so the outbox rows are what the catalog commits), then the relay and two workers as processes
  (`python -m app_product.relay`, `python -m app_cart.worker`): events/s from the relay taking
  over until every cart item holds its product's last version, against the Redis path alone
  (pipelined XADD of the same entries by 100, then the raw read-and-acknowledge loop).
- `memory`: a steady load (a producer XADDing, a worker process applying, `shared.stream_trim.trim`
  every second with a short retention), then the same load without trimming; every second the
  stream's `MEMORY USAGE` (consumer groups and their PEL included), XLEN and the pending count.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence

from databases import Database
from redis.asyncio import Redis

from app_cart.adapters.catalog_client import catalog_client
from app_cart.settings import CartSettings
from app_cart.worker.refresh import Catalog
from app_cart.worker.run import cart_worker
from devtools.bench.common import chosen_phases, service_env, xadd_pipelined
from devtools.bench.e2e import phase_end_to_end
from devtools.bench.events_data import (
    BATCH,
    CARTS,
    EVENTS,
    PRODUCTS,
    ROUNDS,
    VERSIONS,
    entry,
    prepare,
    processes,
    raw_consume,
    reset_items,
    sql,
)
from devtools.bench.targets import single_target
from devtools.servers import throwaway_postgres
from shared.config import load_settings
from shared.events.consumer import Consumer
from shared.events.reclaim import Message
from shared.events.trim import trim
from shared.keys import CART_GROUP, Keys
from shared.storage.postgres import create_database
from shared.storage.redis_conn import create_redis

ONE_BY_ONE_EVENTS = 2_000
MEMORY_SECONDS, MEMORY_RATE, RETENTION_SECONDS = 15, 2_000, 2.0


def one_by_one(settings: CartSettings, db: Database, redis: Redis, name: str, catalog: Catalog) -> Consumer:
    """The worker as it was before batching: each event in its own transaction."""
    worker = cart_worker(settings, db, redis, name, catalog)
    batched = worker.apply

    async def each_alone(messages: Sequence[Message]) -> list[bytes]:
        done = []
        for message in messages:
            done += await batched([message])
        return done

    worker.apply = each_alone  # type: ignore[method-assign]
    return worker


MakeWorker = Callable[[CartSettings, Database, Redis, str, Catalog], Consumer]


async def run_worker(settings: CartSettings, kind: MakeWorker) -> tuple[float, Consumer]:
    db, redis = create_database(settings), create_redis(settings, blocking_seconds=2.0)
    await db.connect()
    catalog = catalog_client(settings, redis)  # product events do not read it
    try:
        worker = kind(settings, db, redis, "bench-worker", catalog)
        started = time.perf_counter()
        await worker.run(asyncio.Event(), burst=True)
        return time.perf_counter() - started, worker
    finally:
        await catalog.aclose()
        await db.disconnect()
        await redis.aclose()


async def phase_worker(cart_db: str, redis_url: str) -> None:
    print(f"\n== worker alone: {EVENTS} events, {PRODUCTS} products in {CARTS} carts, batches of {BATCH}")
    entries = [
        entry(product_id, version)
        for version in range(2, VERSIONS + 2)
        for product_id in range(1, PRODUCTS + 1)
    ]
    rates: list[float] = []
    raw_rates: list[float] = []
    async with Redis.from_url(redis_url) as redis:
        for round_ in range(1, ROUNDS + 2):
            alone = round_ > ROUNDS
            count = ONE_BY_ONE_EVENTS if alone else EVENTS
            stream = Keys(f"bw{round_}").catalog_events()
            await reset_items(cart_db)
            await xadd_pipelined(redis, stream, entries[:count])
            raw = count / await raw_consume(redis, stream, count)
            settings = load_settings(CartSettings, service_env(cart_db, redis_url, f"bw{round_}"))
            make: MakeWorker = one_by_one if alone else cart_worker
            seconds, worker = await run_worker(settings, make)
            assert (worker.applied, worker.failed) == (count, 0), (worker.applied, worker.failed)
            behind = "SELECT count(*) FROM cart_items WHERE product_version < $1"
            assert await sql(cart_db, behind, 1 + count // PRODUCTS) == 0
            rate = count / seconds
            how = f"each event alone, {count} events" if alone else "batched"
            print(
                f"  round {round_}: worker ({how}) {rate:,.0f} events/s,"
                f" raw loop {raw:,.0f}/s, ratio {rate / raw:.3f}"
            )
            if not alone:
                rates.append(rate)
                raw_rates.append(raw)
    rate, raw = statistics.median(rates), statistics.median(raw_rates)
    print(
        f"worker (medians): {rate:,.0f} events/s vs raw XREADGROUP + XACK {raw:,.0f}/s:"
        f" ratio {rate / raw:.3f}"
    )


async def sample_memory(redis: Redis, stream: str, trimming: bool) -> None:
    """Every second for MEMORY_SECONDS: trim (if `trimming`), then print what the stream holds."""
    label, samples = "trim on " if trimming else "trim off", []
    for second in range(1, MEMORY_SECONDS + 1):
        await asyncio.sleep(1.0)
        if trimming:
            await trim(redis, stream, RETENTION_SECONDS)
        memory = int(await redis.memory_usage(stream, samples=0) or 0)  # every node, not a sample
        length, pending = await redis.xlen(stream), (await redis.xpending(stream, CART_GROUP))["pending"]
        samples.append((second, memory))
        print(f"  {label} {second:3d} s: {memory / 1024:8,.0f} KiB, XLEN {length:6,}, pending {pending:4}")
    steady = samples[MEMORY_SECONDS // 3 :]  # after the warm-up
    slope = statistics.linear_regression([s for s, _ in steady], [m for _, m in steady]).slope
    low, high = min(m for _, m in steady) / 1024, max(m for _, m in steady) / 1024
    print(
        f"{label.strip()}: {slope / 1024:+,.1f} KiB/s after the first {MEMORY_SECONDS // 3} s"
        f" (from {low:,.0f} to {high:,.0f} KiB)"
    )


async def phase_memory(cart_db: str, redis_url: str) -> None:
    print(
        f"\n== stream memory: {MEMORY_RATE:,} events/s, one worker process; {MEMORY_SECONDS} s trimming"
        f" every second (retention {RETENTION_SECONDS:.0f} s), then {MEMORY_SECONDS} s without"
    )
    stream = Keys("bmem").catalog_events()
    await reset_items(cart_db)
    async with Redis.from_url(redis_url) as redis:
        stop = asyncio.Event()

        async def produce() -> None:  # MEMORY_RATE a second, in pipelined chunks every 0.1 s
            sent, chunk, next_at = 0, MEMORY_RATE // 10, time.monotonic()
            while not stop.is_set():
                async with redis.pipeline(transaction=False) as pipe:
                    for n in range(sent, sent + chunk):
                        pipe.xadd(stream, entry(n % PRODUCTS + 1, n // PRODUCTS + 2))
                    await pipe.execute()
                sent, next_at = sent + chunk, next_at + 0.1
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        with processes(("app_cart.worker", service_env(cart_db, redis_url, "bmem"))):
            producer = asyncio.create_task(produce())
            await sample_memory(redis, stream, trimming=True)
            await sample_memory(redis, stream, trimming=False)
            stop.set()
            await producer


PHASES = ("worker", "e2e", "memory")


def main() -> None:
    phases = chosen_phases(__doc__, PHASES)
    with throwaway_postgres() as pg, single_target() as redis:
        catalog_db, cart_db, e2e_cart_db = pg.url("bench_catalog"), pg.url("bench_cart"), pg.url("bench_e2e")
        asyncio.run(prepare(catalog_db, cart_db, e2e_cart_db))
        if "worker" in phases:
            asyncio.run(phase_worker(cart_db, redis.url))
        if "e2e" in phases:
            asyncio.run(phase_end_to_end(catalog_db, e2e_cart_db, redis))
        if "memory" in phases:
            asyncio.run(phase_memory(cart_db, redis.url))


if __name__ == "__main__":
    main()
