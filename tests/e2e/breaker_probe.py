"""`python -m tests.e2e.breaker_probe REDIS_URL PREFIX NAME`: take every half-open probe slot,
print the roles taken, then hang (the test kills this process so its probes never report)."""

import asyncio
import sys

from redis.asyncio import Redis

from shared.keys import Keys
from shared.resilience.breaker import BreakerConfig, BreakerOpen, CircuitBreaker
from tests.integration.test_breaker import CONFIG


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
    assert isinstance(CONFIG, BreakerConfig)
    asyncio.run(main(*sys.argv[1:]))
