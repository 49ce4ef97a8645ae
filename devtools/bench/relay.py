"""Benchmark the outbox relay (run it with scripts/bench_relay).

Starts throwaway PostgreSQL (fast mode: fsync off) and Redis, migrates a catalog database and
commits N outbox rows (product.updated events as the catalog writes them, inserted by SQL for
setup speed). Then, alternating rounds in the same run:
- the relay: `Relay.run(burst=True)` in-process (the code `python -m app_product.relay --burst`
  runs) moving every row to the stream and marking it sent;
- the baseline: the same stream entries XADDed pipelined by 100 from memory, nothing read from
  or written to PostgreSQL.
It reports events/s for both and the ratio of the medians; then once the relay as a process
(`python -m app_product.relay --burst`, interpreter start included).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

from app_product.outbox.relay import Relay
from app_product.settings import CatalogSettings
from devtools.bench.common import service_env, xadd_pipelined
from devtools.servers import throwaway_postgres, throwaway_redis
from shared.config import load_settings
from shared.events.envelope import encode, new_event, stream_fields
from shared.keys import Keys
from shared.storage.migrations import SQL_ROOT, migrate

ROOT = Path(__file__).resolve().parents[2]

EVENTS, PRODUCTS, ROUNDS = 20_000, 1_000, 3


async def fill_outbox(conn: asyncpg.Connection) -> list[dict[Any, Any]]:
    """EVENTS committed outbox rows; the stream entries the relay makes of them."""
    rows = []
    for n in range(EVENTS):
        product_id, version = n % PRODUCTS + 1, n // PRODUCTS + 2
        state = {"id": product_id, "sku": f"S{product_id}", "name": f"Product {product_id}", "price": "9.99"}
        state |= {"stock": 5, "is_active": True, "category_id": None, "category_name": None}
        event = new_event("product.updated", product_id, version, state, ["price"])
        rows.append((event.id, event.type, product_id, version, encode(event).decode(), event.occurred_at))
    await conn.executemany(
        "INSERT INTO outbox (event_id, event_type, aggregate_id, aggregate_version, payload, occurred_at)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
        rows,
    )
    sent = await conn.fetch(
        "SELECT event_id::text, event_type, aggregate_id, aggregate_version, payload::text FROM outbox"
        " ORDER BY id"
    )
    return [stream_fields(*row) for row in sent]


async def run_relay(settings: CatalogSettings, redis: Redis) -> float:
    started = time.perf_counter()
    relay = Relay(settings, redis)
    await relay.run(asyncio.Event(), burst=True)
    seconds = time.perf_counter() - started
    assert relay.sent == EVENTS, relay.sent
    return seconds


async def measure(catalog_db: str, redis_url: str) -> None:
    settings = load_settings(CatalogSettings, service_env(catalog_db, redis_url, "brelay"))
    stream = Keys("brelay").catalog_events()
    conn = await asyncpg.connect(catalog_db)
    try:
        entries = await fill_outbox(conn)
        print(f"relay: {EVENTS} outbox rows, RELAY_BATCH_SIZE {settings.relay_batch_size}")
        relay_rates, raw_rates = [], []
        async with Redis.from_url(redis_url) as redis:
            for round_ in range(1, ROUNDS + 1):
                await conn.execute("UPDATE outbox SET sent_at = NULL")
                await conn.execute("VACUUM ANALYZE outbox")  # each round starts from the same table state
                await redis.delete(stream, "raw")
                raw_rates.append(EVENTS / await xadd_pipelined(redis, "raw", entries))
                relay_rates.append(EVENTS / await run_relay(settings, redis))
                assert await redis.xlen(stream) == EVENTS
                print(
                    f"  round {round_}: relay {relay_rates[-1]:,.0f} events/s,"
                    f" raw XADD by 100 {raw_rates[-1]:,.0f}/s, ratio {relay_rates[-1] / raw_rates[-1]:.3f}"
                )
            relay, raw = statistics.median(relay_rates), statistics.median(raw_rates)
            print(
                f"relay (medians of {ROUNDS}): {relay:,.0f} events/s vs raw pipelined XADD {raw:,.0f}/s:"
                f" ratio {relay / raw:.3f} (target: at least 10,000 events/s)"
            )
            await conn.execute("UPDATE outbox SET sent_at = NULL")
            await redis.delete(stream)
            env = {**os.environ, **service_env(catalog_db, redis_url, "brelay")}
            started = time.perf_counter()
            command = [sys.executable, "-m", "app_product.relay", "--burst"]
            process = await asyncio.create_subprocess_exec(*command, env=env, cwd=ROOT)
            assert await process.wait() == 0
            seconds = time.perf_counter() - started
            assert await redis.xlen(stream) == EVENTS
            print(f"python -m app_product.relay --burst, start to exit: {EVENTS / seconds:,.0f} events/s")
    finally:
        await conn.close()


def main() -> None:
    with throwaway_postgres() as pg, throwaway_redis() as rd:
        catalog_db = pg.url("bench_relay")
        asyncio.run(migrate(catalog_db, SQL_ROOT / "catalog"))
        asyncio.run(measure(catalog_db, rd.url))


if __name__ == "__main__":
    main()
