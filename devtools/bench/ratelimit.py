"""Benchmark the rate limiter (run it with scripts/bench_ratelimit).

On one throwaway Redis, in one process, with 64 concurrent callers over 1,000 subjects (20
decisions each against a limit of 10 per 60 s, so half admit and half refuse), it times
- our limiter (shared.ratelimit.limiter: one EVALSHA per batch of the decisions waiting), and
- the `limits` library's moving window (its Redis storage on redis-py's asyncio client),
alternating rounds, and reports decisions per second and their ratio (target: at least 1.0).
A second line does the same with one caller, where nothing can be batched: each decision is
one round trip for both. It also reports the memory of one limited key holding 100 requests
(MEMORY USAGE).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import BlockingConnectionPool, Redis

from devtools.servers import throwaway_redis
from shared.keys import Keys
from shared.ratelimit.limiter import RateLimiter
from shared.ratelimit.spec import Limit

DECISIONS, CONCURRENCY, SUBJECTS, LIMIT, ROUNDS = 20_000, 64, 1_000, 10, 3
HELD = 100  # requests in the key whose memory is measured


async def rate(decide: Callable[[str], Awaitable[object]], callers: int = CONCURRENCY) -> float:
    """Decisions per second with `callers` concurrent callers making DECISIONS in all."""
    counter = iter(range(DECISIONS))

    async def caller() -> None:
        for n in counter:
            await decide(f"user:{n % SUBJECTS}")

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return DECISIONS / (time.perf_counter() - started)


async def main(url: str) -> None:
    # Both limiters on redis-py's ordinary pool (what the limits storage uses), so the figure
    # compares the limiters; a second line uses the services' blocking pool, as they run it.
    redis = Redis.from_url(url, max_connections=CONCURRENCY)
    blocking = Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=CONCURRENCY, timeout=5))
    ours = RateLimiter(redis, Keys("bench"))
    ours_blocking = RateLimiter(blocking, Keys("bench"))
    limits_ = MovingWindowRateLimiter(RedisStorage(f"async+{url}", implementation="redispy"))
    item = RateLimitItemPerMinute(LIMIT)

    async def ours_decide(subject: str) -> object:
        return await ours.check(subject, "reads", [Limit(LIMIT, 60)])

    async def limits_decide(subject: str) -> object:
        return await limits_.hit(item, subject)

    async def ours_blocking_decide(subject: str) -> object:
        return await ours_blocking.check(subject, "reads", [Limit(LIMIT, 60)])

    for decide in (ours_decide, limits_decide, ours_blocking_decide):
        await rate(decide)  # warm: scripts loaded, connections open
    ours_rates: list[float] = []
    limits_rates: list[float] = []
    blocking_rates: list[float] = []
    for _ in range(ROUNDS):
        for decide, rates in (
            (ours_decide, ours_rates),
            (limits_decide, limits_rates),
            (ours_blocking_decide, blocking_rates),
        ):
            await redis.flushdb()  # our own throwaway server: every round starts from empty logs
            rates.append(await rate(decide))
    o, lim = statistics.median(ours_rates), statistics.median(limits_rates)
    print(
        f"rate limiter ({DECISIONS} decisions, {CONCURRENCY} concurrent, medians of {ROUNDS}): "
        f"ours {o:.0f}/s, limits' moving window {lim:.0f}/s, ratio {o / lim:.2f} (target: at least 1.0)"
    )
    print(f"  each round: ours {[round(r) for r in ours_rates]}, limits {[round(r) for r in limits_rates]}")
    print(f"  ours on the services' blocking pool: {statistics.median(blocking_rates):.0f}/s")
    alone: dict[str, list[float]] = {"ours": [], "limits": []}
    for _ in range(ROUNDS):
        for name, decide in (("ours", ours_decide), ("limits", limits_decide)):
            await redis.flushdb()
            alone[name].append(await rate(decide, callers=1))
    o, lim = statistics.median(alone["ours"]), statistics.median(alone["limits"])
    print(f"one caller at a time: ours {o:.0f}/s, limits {lim:.0f}/s, ratio {o / lim:.2f}")

    await redis.flushdb()
    for _ in range(HELD):
        await ours.check("user:memory", "reads", [Limit(HELD, 60)])
    key = Keys("bench").rate_limit("user:memory", "reads", 60)
    used = await redis.memory_usage(key) or 0
    print(f"memory: one key holding {HELD} requests takes {used} bytes ({used / HELD:.0f} per request)")
    await redis.aclose()
    await blocking.aclose()


if __name__ == "__main__":
    with throwaway_redis() as server:
        asyncio.run(main(server.url))
