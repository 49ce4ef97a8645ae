"""Benchmark the Redis Cluster mode against a single Redis (run it with scripts/bench_cluster).

Starts a throwaway single Redis and a throwaway 3+3 cluster side by side (and PostgreSQL where
a phase needs it), then runs the same measurement on each, alternating round by round so the
noisy machine weighs on both alike, and reports cluster / single ratios. Phases (name some to
run only those; default all):

- `cart`: `GET /api/cart` under wrk (devtools/bench/cluster_cart.py), and the Redis requests a
  cart read sends on each set-up.
- `ratelimit`: the rate limiter's decisions per second (devtools/bench/ratelimit.py's load: 64
  concurrent callers over 1,000 subjects, then one caller), on the services' own client
  (`create_redis`: the blocking pool, or the cluster client).
- `e2e`: events per second end to end, relay -> stream -> 2 worker processes -> carts
  (devtools/bench/e2e.py), on each set-up with STREAM_PARTITIONS=1 and 3.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from devtools.bench.cluster_cart import phase_cart
from devtools.bench.common import chosen_phases, service_env
from devtools.bench.e2e import phase_partitions
from devtools.bench.events_data import prepare
from devtools.bench.ratelimit import CONCURRENCY, DECISIONS, LIMIT, ROUNDS, SUBJECTS, rate
from devtools.bench.targets import Target, both_targets
from devtools.servers import throwaway_postgres
from shared.config import Settings, load_settings
from shared.keys import keys_for
from shared.ratelimit.limiter import RateLimiter
from shared.ratelimit.spec import Limit
from shared.storage.redis_conn import create_redis

Decide = Callable[[str], Awaitable[object]]


def decider(limiter: RateLimiter) -> Decide:
    """One decision of `limiter` for a subject, as ratelimit.py's own load makes them."""

    async def decide(subject: str) -> object:
        return await limiter.check(subject, "reads", [Limit(LIMIT, 60)])

    return decide


async def phase_ratelimit(targets: tuple[Target, Target]) -> None:
    print(
        f"\n== rate limiter: {DECISIONS:,} decisions over {SUBJECTS:,} subjects (limit {LIMIT} per 60 s),"
        " single Redis vs 3+3 cluster"
    )
    deciders: dict[str, tuple[Target, Redis, Decide]] = {}
    for target in targets:
        env = {**service_env("", target.url, "bench"), **target.env()}
        settings = load_settings(Settings, env | {"REDIS_MAX_CONNECTIONS": str(CONCURRENCY)})
        redis = create_redis(settings)
        deciders[target.name] = (target, redis, decider(RateLimiter(redis, keys_for(settings))))
    try:
        for callers in (CONCURRENCY, 1):
            for _, _, decide in deciders.values():
                await rate(decide, callers)  # warm: connections, slot map, scripts on every master
            rates: dict[str, list[float]] = {name: [] for name in deciders}
            cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in deciders}
            for _ in range(ROUNDS):
                for name, (target, redis, decide) in deciders.items():
                    await redis.flushdb()  # our own servers (every master): each round from empty logs
                    redis_cpu, client_cpu = target.cpu_seconds(), time.process_time()
                    rates[name].append(await rate(decide, callers))
                    redis_cpu, client_cpu = target.cpu_seconds() - redis_cpu, time.process_time() - client_cpu
                    cpu[name].append((client_cpu / DECISIONS * 1e6, redis_cpu / DECISIONS * 1e6))
            single, cluster = (statistics.median(rates[name]) for name in ("single", "cluster"))
            print(
                f"{callers} concurrent caller(s), medians of {ROUNDS}: single {single:,.0f}/s,"
                f" cluster {cluster:,.0f}/s, cluster/single {cluster / single:.2f}"
            )
            each = ", ".join(f"{name} {[round(r) for r in runs]}" for name, runs in rates.items())
            print(f"  each round: {each}")
            for name, costs in cpu.items():
                client, server = (statistics.median(cost[i] for cost in costs) for i in range(2))
                print(
                    f"  {name}: CPU per decision (medians): client {client:.1f} us,"
                    f" Redis {server:.1f} us (every node)"
                )
    finally:
        for _, redis, _ in deciders.values():
            await redis.aclose()


PHASES = ("cart", "ratelimit", "e2e")


def main() -> None:
    phases = chosen_phases(__doc__, PHASES)
    with throwaway_postgres() as pg, both_targets() as targets:
        if "cart" in phases:
            asyncio.run(phase_cart(pg, targets))
        if "ratelimit" in phases:
            asyncio.run(phase_ratelimit(targets))
        if "e2e" in phases:
            # Databases of the phase's own: the cart phase's cart holds other products.
            catalog_db, cart_db = pg.url("bench_e2e_catalog"), pg.url("bench_e2e_cart")
            asyncio.run(prepare(catalog_db, cart_db))
            asyncio.run(phase_partitions(catalog_db, cart_db, targets))


if __name__ == "__main__":
    main()
