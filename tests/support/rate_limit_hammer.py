"""`python -m tests.support.rate_limit_hammer REDIS_URL PREFIX SUBJECT LIMIT ATTEMPTS [cluster]`: one
process of the multi-instance rate-limit test (on a Redis Cluster with `cluster`). Connects,
prints "ready", waits for a line on stdin (so all processes start together), makes its attempts
from 10 concurrent workers, and prints how many were admitted."""

import asyncio
import sys

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from shared.keys import Keys
from shared.ratelimit.limiter import RateLimiter
from shared.ratelimit.spec import Limit


async def main(redis_url: str, prefix: str, subject: str, limit: int, attempts: int, cluster: bool) -> None:
    if cluster:
        redis: Redis = RedisCluster.from_url(redis_url, max_connections=attempts)  # type: ignore[assignment]
    else:
        redis = Redis.from_url(redis_url, max_connections=attempts)
    limiter = RateLimiter(redis, Keys(prefix, cluster=cluster))
    await redis.ping()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    decisions = await asyncio.gather(
        *(limiter.check(subject, "writes", [Limit(limit, 60)]) for _ in range(attempts))
    )
    await redis.aclose()
    print(sum(decision.admitted for decision in decisions), flush=True)


if __name__ == "__main__":
    url, prefix, subject, limit, attempts, *mode = sys.argv[1:]
    asyncio.run(main(url, prefix, subject, int(limit), int(attempts), mode == ["cluster"]))
