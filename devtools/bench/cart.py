"""Benchmark `GET /api/cart` with 20 items and a warm cache (run it with scripts/bench_cart).

Starts throwaway PostgreSQL and Redis, the catalog and the cart as real processes (one uvicorn
worker each), fills one cart with 20 products, then measures:
- Redis round trips per request (commands sent by clients, seen by MONITOR; the commands a
  Lua script runs inside Redis are not round trips) and SQL statements per request
  (pg_stat_database.xact_commit: each autocommit statement is one transaction);
- throughput with wrk against the cart and against a minimal Starlette endpoint doing the same
  I/O by hand (devtools/bench/baseline_app.py), served the same way, alternating in the same
  run so the noisy 2-core machine weighs on both alike. The figure is their ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import asyncpg
import httpx
from redis import Redis

from devtools.bench.common import SECRET, loaded, running, token
from devtools.servers import PostgresServer, free_port, throwaway_postgres, throwaway_redis
from shared.storage.migrations import SQL_ROOT, migrate

ROOT = Path(__file__).resolve().parents[2]

ITEMS, CONNECTIONS, SECONDS, ROUNDS, COUNTED = 20, 64, 8, 3, 200
UNLIMITED = {f"RATE_LIMIT_{group}": "100000/60" for group in ("READS", "WRITES", "ADMIN", "INTERNAL")}


def count_round_trips(redis_url: str, action: Callable[[], None]) -> int:
    """Commands clients send to Redis while `action` runs (MONITOR marks Lua's own as "lua")."""
    lines: list[str] = []
    monitor = Redis.from_url(redis_url).monitor()  # type: ignore[no-untyped-call]
    ready = threading.Event()

    def listen() -> None:
        with monitor as m:
            ready.set()
            for command in m.listen():
                if "QUIT-BENCH" in command["command"]:
                    return
                lines.append(command.get("client_type", "tcp"))

    thread = threading.Thread(target=listen)
    thread.start()
    ready.wait()
    action()
    Redis.from_url(redis_url).echo("QUIT-BENCH")  # ends the listener (ECHO shows in MONITOR)
    thread.join(timeout=10)
    return sum(1 for source in lines if source != "lua")


async def statements(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        )
    finally:
        await conn.close()


async def vacuum_analyze(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def fill_cart(catalog: str, cart: str, shopper: str) -> list[int]:
    """Create ITEMS products and put each in the shopper's cart; their ids."""
    admin = {"Authorization": f"Bearer {token('bench-admin', ('admin',))}"}
    ids = []
    for i in range(1, ITEMS + 1):
        body = {"sku": f"BENCH-{i}", "name": f"Bench {i}", "price": "9.99", "stock": 100}
        product = httpx.post(f"{catalog}/api/products", headers=admin, json=body).json()
        added = httpx.post(
            f"{cart}/api/cart/items",
            headers={"Authorization": f"Bearer {shopper}"},
            json={"product_id": product["id"]},
        )
        added.raise_for_status()
        ids.append(product["id"])
    return ids


def measure(
    shopper: str, cart: str, baseline: str, pids: tuple[int, int], cart_db: str, redis_url: str
) -> None:
    with httpx.Client(headers={"Authorization": f"Bearer {shopper}"}) as client:
        view = client.get(f"{cart}/api/cart").json()
        assert len(view["items"]) == ITEMS and not view["stale"], view

        def reads() -> None:
            for _ in range(COUNTED):
                client.get(f"{cart}/api/cart").raise_for_status()

        # Autovacuum would analyze the tables the fill just wrote, and its transactions count
        # in the same statistics: do it now, so it has nothing left to do while we count.
        asyncio.run(vacuum_analyze(cart_db))
        # PostgreSQL 15 backends report their counts when idle, at most every 10 s: wait that
        # out before each reading, so the fill's last statements are not counted as the reads'.
        time.sleep(11)
        before = asyncio.run(statements(cart_db))
        trips = count_round_trips(redis_url, reads)
        time.sleep(11)
        # The counting connections' own statements (one each) are not the cart's.
        sql = asyncio.run(statements(cart_db)) - before - 1
    print(
        f"GET /api/cart, {ITEMS} items, warm cache: {trips / COUNTED:.2f} Redis round trips and "
        f"{sql / COUNTED:.2f} SQL statements per request (targets: at most 2 and 1)"
    )
    cart_runs, base_runs = [], []
    for _ in range(ROUNDS):
        auth = {"Authorization": f"Bearer {shopper}"}
        base_runs.append(loaded(f"{baseline}/api/cart", auth, pids[1], CONNECTIONS, SECONDS))
        cart_runs.append(loaded(f"{cart}/api/cart", auth, pids[0], CONNECTIONS, SECONDS))
    c, b = (statistics.median(rate for rate, _ in runs) for runs in (cart_runs, base_runs))
    print(
        f"throughput (wrk, {CONNECTIONS} connections, {ROUNDS} x {SECONDS} s, medians): cart {c:.0f} req/s, "
        f"baseline {b:.0f} req/s, ratio {c / b:.2f} (target: at least 0.7)"
    )
    print(
        f"  each round: cart {[round(r) for r, _ in cart_runs]}, baseline {[round(r) for r, _ in base_runs]}"
    )
    # CPU per request is steadier than throughput on a shared machine: other processes slow
    # the wall clock, much less the CPU a request costs. Its inverse ratio is the throughput
    # ratio the cart would reach with the server process as the only bottleneck.
    cc, bc = (statistics.median(cpu for _, cpu in runs) for runs in (cart_runs, base_runs))
    print(
        f"server CPU per request (medians): cart {cc:.0f} us, baseline {bc:.0f} us, "
        f"baseline/cart {bc / cc:.2f}"
    )


class Shop(NamedTuple):
    catalog: str  # base URLs
    cart: str
    cart_pid: int


async def databases(pg: PostgresServer) -> tuple[str, str]:
    """A migrated catalog and cart database; their URLs."""
    catalog_db, cart_db = pg.url("bench_catalog"), pg.url("bench_cart")
    await migrate(catalog_db, SQL_ROOT / "catalog")
    await migrate(cart_db, SQL_ROOT / "cart")
    return catalog_db, cart_db


def shop_env(redis: Mapping[str, str]) -> dict[str, str]:
    """The services' environment with `redis`'s settings (REDIS_URL and the like)."""
    return {"ENV": "test", "JWT_SECRET": SECRET, "LOG_LEVEL": "WARNING", **UNLIMITED, **redis}


@contextlib.contextmanager
def shop(env: dict[str, str], catalog_db: str, cart_db: str) -> Iterator[Shop]:
    """The catalog and the cart as real processes (one uvicorn worker each), the cart reading
    that catalog; both terminated when the block ends."""
    python = sys.executable
    catalog_port, cart_port = free_port(), free_port()
    catalog = f"http://127.0.0.1:{catalog_port}"
    cart_env = {**env, "DATABASE_URL": cart_db, "CATALOG_URL": catalog}
    with (
        running([python, "-m", "app_product"], {**env, "DATABASE_URL": catalog_db}, catalog_port),
        running([python, "-m", "app_cart"], cart_env, cart_port) as cart,
    ):
        yield Shop(catalog, f"http://127.0.0.1:{cart_port}", cart.pid)


def main() -> None:
    with throwaway_postgres() as pg, throwaway_redis() as rd:
        catalog_db, cart_db = asyncio.run(databases(pg))
        env = shop_env({"REDIS_URL": rd.url})
        with shop(env, catalog_db, cart_db) as services:
            shopper = token("bench-shopper")
            ids = fill_cart(services.catalog, services.cart, shopper)
            # The baseline reads the same cached products, so it parses the same 20 values.
            baseline_env = {**env, "DATABASE_URL": cart_db, "BENCH_PRODUCT_IDS": ",".join(map(str, ids))}
            port = free_port()
            baseline_app = [sys.executable, "-m", "devtools.bench.baseline_app", str(port)]
            with running(baseline_app, baseline_env, port) as baseline:
                pids = (services.cart_pid, baseline.pid)
                measure(shopper, services.cart, f"http://127.0.0.1:{port}", pids, cart_db, rd.url)


if __name__ == "__main__":
    main()
