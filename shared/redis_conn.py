"""The Redis connection pool of a service process (redis-py asyncio).

One pool per process, sized by REDIS_MAX_CONNECTIONS, with connect and socket timeouts from
settings so that a stalled Redis costs a request at most those timeouts, never a hang.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.config import Settings


def create_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        health_check_interval=30,
    )
