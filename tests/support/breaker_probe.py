"""`python -m tests.support.breaker_probe REDIS_URL PREFIX NAME`: take every half-open probe slot,
print the roles taken, then hang (the test kills this process so its probes never report)."""

import asyncio
import sys

from redis.asyncio import Redis

from shared.keys import Keys
from shared.resilience.breaker import BreakerConfig, BreakerOpen, CircuitBreaker

# The breaker the integration tests and this probe share: small numbers, so a test trips it fast.
CONFIG = BreakerConfig(
    window_seconds=10,
    bucket_seconds=1,
    min_calls=4,
    failure_rate=0.5,
    slow_call_seconds=0.5,
    slow_call_rate=0.8,
    recovery_seconds=1,
    half_open_probes=3,
    probe_lease_seconds=1,
)


async def main(url: str, prefix: str, name: str) -> None:
    breaker = CircuitBreaker(Redis.from_url(url), Keys(prefix), name, CONFIG)
    taken = []
    for _ in range(CONFIG.half_open_probes + 1):
        try:
            taken.append("probe" if (await breaker.acquire()).probe else "call")
        except BreakerOpen:
            taken.append("refused")
    print(" ".join(taken), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
