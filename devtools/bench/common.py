"""What the benchmark scripts share: the JWT secret of the services they start, those
services' environment (test mode, quiet logs, keys under a prefix of the benchmark's own), and
the raw pipelined XADD the event benchmarks compare against."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

SECRET = "bench-secret-0123456789abcdef-0123456789"


def service_env(database_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "ENV": "test",
        "JWT_SECRET": SECRET,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
    }


async def xadd_pipelined(redis: Redis, stream: str, entries: list[dict[Any, Any]]) -> float:
    """XADD `entries` pipelined by 100 (the ceiling the issue quotes); the seconds it took."""
    started = time.perf_counter()
    for start in range(0, len(entries), 100):
        async with redis.pipeline(transaction=False) as pipe:
            for fields in entries[start : start + 100]:
                pipe.xadd(stream, fields)
            await pipe.execute()
    return time.perf_counter() - started
