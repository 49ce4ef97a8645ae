"""scripts/bench_cluster's cart phase: `GET /api/cart` with 20 items and a warm cache, the cart
on a single Redis against the same cart on a 3+3 Redis Cluster (REDIS_CLUSTER=true).

Both set-ups run side by side: a catalog and a cart process each (devtools/bench/cart.py's
`shop`), on one catalog and one cart database, so both read the same cart of the same 20
products. It reports, for each:
- the Redis requests one cart read sends (all of them: rate limit, product cache, anything
  else), and those of the product cache's read (its `read_requests`: one per master touched),
  counted over COUNTED reads of a cart app built in this process with the same settings (the
  cache's counter is not exposed by the service; the code is the same);
- throughput with wrk, the two alternating round by round, and the CPU each request costs the
  cart process and the Redis set-up (every node, replicas included). The figure is the ratio
  cluster / single of the median throughputs.
"""

from __future__ import annotations

import contextlib
import statistics
from typing import Any
from unittest import mock

import httpx
from redis.asyncio.connection import AbstractConnection

from app_cart.app import create_app as create_cart_app
from app_cart.settings import CartSettings
from devtools.bench.cart import (
    CONNECTIONS,
    COUNTED,
    ITEMS,
    ROUNDS,
    SECONDS,
    Shop,
    databases,
    fill_cart,
    shop,
    shop_env,
)
from devtools.bench.common import loaded, token
from devtools.bench.targets import Target
from devtools.servers import PostgresServer
from shared.config import load_settings


async def redis_requests(settings: CartSettings, shopper: str) -> tuple[float, float]:
    """Redis requests per cart read (each write of a request or a pipeline to a connection, so
    a pipeline split over three masters counts three), and the product cache's read_requests
    per read, over COUNTED reads of an in-process cart."""
    app = create_cart_app(settings)
    sent = 0
    send = AbstractConnection.send_packed_command

    async def counted(connection: AbstractConnection, command: Any, check_health: bool = True) -> None:
        nonlocal sent
        sent += 1
        await send(connection, command, check_health)

    auth = {"Authorization": f"Bearer {shopper}"}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://cart", headers=auth) as client,
    ):
        (await client.get("/api/cart")).raise_for_status()  # warm: connections, slot map, scripts
        cache = app.state.cart.products.cache
        before = cache.read_requests
        # Every redis-py connection sends through this method, the cluster client's too: patched
        # for the counted reads only, it counts what went over the wire without touching the
        # service's code.
        with mock.patch.object(AbstractConnection, "send_packed_command", counted):
            for _ in range(COUNTED):
                (await client.get("/api/cart")).raise_for_status()
        return sent / COUNTED, (cache.read_requests - before) / COUNTED


def check_warm(cart: str, shopper: str) -> None:
    """Read the cart once (the first read fills that set-up's product cache) and check it."""
    view = httpx.get(f"{cart}/api/cart", headers={"Authorization": f"Bearer {shopper}"}).json()
    assert len(view["items"]) == ITEMS and not view["stale"], view


def throughput(shops: list[tuple[Target, Shop]], shopper: str) -> None:
    """wrk on each cart in turn, ROUNDS times; medians and the cluster / single ratio."""
    auth = {"Authorization": f"Bearer {shopper}"}
    runs: dict[str, list[tuple[float, float, float]]] = {target.name: [] for target, _ in shops}
    for round_ in range(1, ROUNDS + 1):
        line = []
        for target, services in shops:
            redis_cpu = target.cpu_seconds()
            rate, cpu = loaded(f"{services.cart}/api/cart", auth, services.cart_pid, CONNECTIONS, SECONDS)
            redis_us = (target.cpu_seconds() - redis_cpu) / (rate * SECONDS) * 1e6
            runs[target.name].append((rate, cpu, redis_us))
            costs = f"CPU per request: cart {cpu:.0f} us, Redis {redis_us:.0f} us"
            line.append(f"{target.name} {rate:,.0f} req/s ({costs})")
        print(f"  round {round_}: {', '.join(line)}")
    medians: list[dict[str, float]] = [
        {name: statistics.median(run[i] for run in each) for name, each in runs.items()} for i in range(3)
    ]
    rates, cart_cpus, redis_cpus = medians
    print(
        f"cart throughput (wrk, {CONNECTIONS} connections, medians of {ROUNDS} x {SECONDS} s): single"
        f" {rates['single']:,.0f} req/s, cluster {rates['cluster']:,.0f} req/s,"
        f" cluster/single {rates['cluster'] / rates['single']:.2f}"
    )
    print(
        f"CPU per request (medians): cart process single {cart_cpus['single']:.0f} us, cluster"
        f" {cart_cpus['cluster']:.0f} us; Redis (every node) single {redis_cpus['single']:.0f} us,"
        f" cluster {redis_cpus['cluster']:.0f} us"
    )


async def phase_cart(pg: PostgresServer, targets: tuple[Target, Target]) -> None:
    print(f"\n== cart: GET /api/cart, {ITEMS} items, warm cache, single Redis vs 3+3 cluster")
    catalog_db, cart_db = await databases(pg)
    shopper = token("bench-shopper")
    with contextlib.ExitStack() as stack:
        shops = [
            (target, stack.enter_context(shop(shop_env(target.env()), catalog_db, cart_db)))
            for target in targets
        ]
        first = shops[0][1]
        fill_cart(first.catalog, first.cart, shopper)  # the same cart, read by both set-ups
        for target, services in shops:
            check_warm(services.cart, shopper)
            env = {**shop_env(target.env()), "DATABASE_URL": cart_db, "CATALOG_URL": services.catalog}
            sent, reads = await redis_requests(load_settings(CartSettings, env), shopper)
            print(
                f"  {target.name}: {sent:.2f} Redis requests per cart read, of which the product"
                f" cache's {reads:.2f} (read_requests per read)"
            )
        throughput(shops, shopper)
