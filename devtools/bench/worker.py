"""Benchmark the cart's event worker and the event path end to end (run it with scripts/bench_worker).

Starts throwaway PostgreSQL (the dev servers' fast mode: fsync and synchronous_commit off) and
Redis, migrates a catalog and two cart databases, and puts 1,000 products in 1,000 carts (10
items a cart, each product in 10 carts; set up by SQL). Then, each phase in the same run:

- `worker`: 10,000 product.updated events (10 versions of each product) in the stream, applied
  by the real worker (`cart_worker`) in-process (`--burst` semantics), against a raw loop of
  `XREADGROUP COUNT 100` and one `XACK` over the same entries, in a group of its own, on the same Redis. The
  figure is the ratio of the medians of 3 rounds. A last, shorter round times the worker
  applying each event in its own transaction, as it did before batching.
- `e2e`: 10,000 product updates written through the catalog's service functions (so the
  outbox rows are what the catalog commits), then the relay and two workers as processes
  (`python -m app_product.relay`, `python -m app_cart.worker`): events/s from the relay taking
  over until every cart item holds its product's last version, against the Redis path alone
  (pipelined XADD of the same entries by 100, then the raw read-and-acknowledge loop).
- `memory`: a steady load (a producer XADDing, a worker process applying, `shared.stream_trim.trim`
  every second with a short retention), then the same load without trimming; every second the
  stream's `MEMORY USAGE` (consumer groups and their PEL included), XLEN and the pending count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from databases import Database
from redis.asyncio import Redis

from app_cart.adapters.catalog_client import catalog_client
from app_cart.settings import CartSettings
from app_cart.worker.refresh import Catalog
from app_cart.worker.run import cart_worker
from app_product.app import open_catalog
from app_product.catalog import products
from app_product.catalog.models import ProductPatch
from app_product.outbox.relay import LOCK_KEY as RELAY_LOCK
from app_product.settings import CatalogSettings
from devtools.bench.common import service_env, xadd_pipelined
from devtools.servers import throwaway_postgres, throwaway_redis
from shared.config import load_settings
from shared.events.consumer import Consumer
from shared.events.envelope import encode, new_event, stream_fields
from shared.events.reclaim import Message
from shared.events.trim import trim
from shared.http.versioning import ExpectedVersion
from shared.keys import CART_GROUP, Keys
from shared.storage.migrations import SQL_ROOT, migrate
from shared.storage.postgres import create_database
from shared.storage.redis_conn import create_redis

ROOT = Path(__file__).resolve().parents[2]

CARTS, ITEMS_PER_CART, PRODUCTS, VERSIONS = 1_000, 10, 1_000, 10
EVENTS = PRODUCTS * VERSIONS
BATCH, ROUNDS, ONE_BY_ONE_EVENTS, WRITERS = 100, 3, 2_000, 8
MEMORY_SECONDS, MEMORY_RATE, RETENTION_SECONDS = 15, 2_000, 2.0
Fields = dict[Any, Any]


async def sql(database_url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def fill_carts(cart_db: str) -> None:
    """CARTS carts of ITEMS_PER_CART items at version 1; each product sits in ITEMS_PER_CART carts."""
    await sql(cart_db, "INSERT INTO carts (user_id) SELECT 'u' || n FROM generate_series(1, $1) AS n", CARTS)
    await sql(
        cart_db,
        "INSERT INTO cart_items (cart_id, product_id, quantity, product_name, price_when_added,"
        " current_price, is_available, product_version)"
        " SELECT c.id, (c.id + j * $1::int) % $2::int + 1, 1, 'p', 1, 1, true, 1"
        " FROM carts AS c, generate_series(0, $3::int - 1) AS j",
        PRODUCTS // ITEMS_PER_CART,
        PRODUCTS,
        ITEMS_PER_CART,
    )


async def reset_items(cart_db: str) -> None:
    await sql(cart_db, "UPDATE cart_items SET product_version = 1, current_price = 1")


def entry(product_id: int, version: int) -> Fields:
    """A product.updated stream entry, as the relay writes it."""
    state = {"id": product_id, "name": f"p{version}", "price": f"{version}.00", "stock": 5}
    event = new_event(
        "product.updated", product_id, version, state | {"is_active": True, "category_name": None}
    )
    return stream_fields(str(event.id), event.type, product_id, version, encode(event).decode())


async def raw_consume(redis: Redis, stream: str, count: int) -> float:
    """Read `count` entries in a group of its own, `XREADGROUP COUNT BATCH` then one XACK each."""
    await redis.xgroup_create(stream, "raw", id="0")
    started, done = time.perf_counter(), 0
    while done < count:
        reply: Any = await redis.xreadgroup("raw", "raw-1", {stream: ">"}, count=BATCH)
        ids = [message_id for message_id, _ in reply[0][1]]
        await redis.xack(stream, "raw", *ids)
        done += len(ids)
    return time.perf_counter() - started


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


async def poll(check: Callable[[], Awaitable[bool]], deadline_seconds: float) -> float:
    """Poll `check` every 20 ms until true; the perf_counter time it first was."""
    deadline = time.monotonic() + deadline_seconds
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError("not done before the deadline")
        await asyncio.sleep(0.02)  # polling other processes' effects
    return time.perf_counter()


@contextlib.contextmanager
def processes(*commands: tuple[str, dict[str, str]]) -> Iterator[None]:
    """`python -m <module>` for each (module, environment), terminated when the block ends."""
    started = [
        subprocess.Popen([sys.executable, "-m", module], env={**os.environ, **env}, cwd=ROOT)
        for module, env in commands
    ]
    try:
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=30)


async def e2e_round(catalog_db: str, cart_db: str, redis_url: str, prefix: str) -> float:
    """Seconds from the relay taking over until every cart item holds its product's last version.

    The relay starts as a standby (this script holds its lock), so the time counts neither
    interpreter starts nor imports: it begins when the lock is released, as at a takeover."""
    await sql(catalog_db, "UPDATE outbox SET sent_at = NULL")
    await reset_items(cart_db)
    catalog, cart = await asyncpg.connect(catalog_db), await asyncpg.connect(cart_db)
    async with Redis.from_url(redis_url) as redis:

        async def ready() -> bool:
            beats = [key async for key in redis.scan_iter(match=Keys(prefix).worker_heartbeat("*"))]
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            return len(beats) == 2 and await catalog.fetchval(waiting) == 1

        async def applied() -> bool:
            behind = "SELECT count(*) FROM cart_items WHERE product_version < $1"
            return bool(await cart.fetchval(behind, VERSIONS + 1) == 0)

        try:
            await catalog.execute("SELECT pg_advisory_lock($1)", RELAY_LOCK)
            worker = ("app_cart.worker", service_env(cart_db, redis_url, prefix))
            with processes(worker, worker, ("app_product.relay", service_env(catalog_db, redis_url, prefix))):
                await poll(ready, 30)
                started = time.perf_counter()
                await catalog.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK)
                done = await poll(applied, 120)
        finally:
            await catalog.close()
            await cart.close()
    return done - started


async def phase_end_to_end(catalog_db: str, cart_db: str, redis_url: str) -> None:
    print(f"\n== end to end: {EVENTS} product updates, {PRODUCTS} products in {CARTS} carts")
    seconds = await write_updates(catalog_db, redis_url)
    print(f"  catalog writes (products.update_product, {WRITERS} writers): {EVENTS / seconds:,.0f} updates/s")
    entries = await outbox_entries(catalog_db)
    rates, raw_rates = [], []
    async with Redis.from_url(redis_url) as redis:
        for round_ in range(1, ROUNDS + 1):
            rates.append(EVENTS / await e2e_round(catalog_db, cart_db, redis_url, f"be2e{round_}"))
            raw_stream = Keys(f"be2e-raw{round_}").catalog_events()
            raw_seconds = await xadd_pipelined(redis, raw_stream, entries)
            raw_rates.append(EVENTS / (raw_seconds + await raw_consume(redis, raw_stream, EVENTS)))
            print(
                f"  round {round_}: relay and 2 workers {rates[-1]:,.0f} events/s,"
                f" Redis path alone {raw_rates[-1]:,.0f}/s, ratio {rates[-1] / raw_rates[-1]:.3f}"
            )
    rate, raw = statistics.median(rates), statistics.median(raw_rates)
    print(
        f"end to end (medians): {rate:,.0f} events/s (target: at least 5,000) vs the Redis path alone"
        f" (XADD by 100, then XREADGROUP + XACK) {raw:,.0f}/s: ratio {rate / raw:.3f}"
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phases", nargs="*", help=f"of {', '.join(PHASES)} (default: all)")
    phases = parser.parse_args().phases or PHASES
    if set(phases) - set(PHASES):  # not `choices`: argparse checks an empty `*` list against them
        parser.error(f"phases are {', '.join(PHASES)}")
    with throwaway_postgres() as pg, throwaway_redis() as rd:
        catalog_db, cart_db, e2e_cart_db = pg.url("bench_catalog"), pg.url("bench_cart"), pg.url("bench_e2e")

        async def prepare() -> None:
            for url, folder in ((catalog_db, "catalog"), (cart_db, "cart"), (e2e_cart_db, "cart")):
                await migrate(url, SQL_ROOT / folder)
            await fill_carts(cart_db)
            await fill_carts(e2e_cart_db)

        asyncio.run(prepare())
        if "worker" in phases:
            asyncio.run(phase_worker(cart_db, rd.url))
        if "e2e" in phases:
            asyncio.run(phase_end_to_end(catalog_db, e2e_cart_db, rd.url))
        if "memory" in phases:
            asyncio.run(phase_memory(cart_db, rd.url))


if __name__ == "__main__":
    main()
