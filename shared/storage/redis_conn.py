"""The Redis connection pool of a service process (redis-py asyncio).

One pool per process, sized by REDIS_MAX_CONNECTIONS, with connect and socket timeouts from
settings so that a stalled Redis costs a request at most those timeouts, never a hang. The pool
blocks (up to REDIS_SOCKET_TIMEOUT) when every connection is busy: redis-py's default pool
raises "Too many connections" instead, which under a burst would make the rate limiter fail
open exactly when it matters. Size it to the concurrency a process serves.

With REDIS_CLUSTER=true the client is redis-py's `RedisCluster`: REDIS_URL names any node, the
others are discovered (and rediscovered after a failover, on MOVED or a failed node). Its pools
are per node, REDIS_MAX_CONNECTIONS each; redis-py's would fail a command at once when full, so
the process admits at most that many commands at a time and the next waits its turn (up to
REDIS_SOCKET_TIMEOUT), as on one Redis (shared.storage.cluster_client). Code that runs on both
types uses only what both offer.
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import RedisError

from shared.config import Settings
from shared.storage.cluster_client import AdmittedCluster, ClusterConnection, use_connection_class


class RedisModeMismatch(Exception):
    """REDIS_CLUSTER says one mode and the Redis at REDIS_URL is of the other: a setting to fix,
    not an outage to wait out."""


async def check_mode(settings: Settings) -> None:
    """Raise RedisModeMismatch if the Redis at REDIS_URL answers and is of the other mode. Without
    it a cluster client of a single server finds "no reachable node" and waits for ever as if Redis
    were down, and a single-node client of a cluster node fails every key of another node's
    slots. A Redis that does not answer passes: that is an outage, which the fallbacks handle."""
    client = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
    )
    try:
        cluster = bool((await client.info("cluster")).get("cluster_enabled"))
    except (RedisError, OSError):
        return
    finally:
        await client.aclose()
    if cluster != settings.redis_cluster:
        server, setting = ("a Redis Cluster node", "true") if cluster else ("a single Redis", "false")
        raise RedisModeMismatch(f"REDIS_URL names {server}: set REDIS_CLUSTER={setting}")


def create_redis(settings: Settings, *, blocking_seconds: float = 0.0) -> Redis:
    """The process's pool. A client that issues blocking reads (XREADGROUP BLOCK) passes how
    long they block, so that its socket timeout outlasts them."""
    if settings.redis_cluster:
        cluster = cast(
            AdmittedCluster,
            AdmittedCluster.from_url(
                settings.redis_url,
                # More nodes to start from: a process (re)started while REDIS_URL's node is down (a
                # master that failed over, say) still finds the cluster through another.
                startup_nodes=[ClusterNode(host, int(port)) for host, _, port in _nodes(settings)],
                max_connections=settings.redis_max_connections,
                socket_timeout=settings.redis_socket_timeout + blocking_seconds,
                socket_connect_timeout=settings.redis_connect_timeout,
                health_check_interval=30,
            ),
        )
        use_connection_class(cluster, ClusterConnection)
        cluster.admit(settings.redis_max_connections, timeout=settings.redis_socket_timeout)
        # Typed as Redis for its users: they call only commands both clients have (see above).
        return cluster  # type: ignore[return-value]
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout,
        socket_timeout=settings.redis_socket_timeout + blocking_seconds,
        socket_connect_timeout=settings.redis_connect_timeout,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def _nodes(settings: Settings) -> list[tuple[str, str, str]]:
    """REDIS_CLUSTER_NODES ("host:port,host:port"), split."""
    return [node.strip().rpartition(":") for node in settings.redis_cluster_nodes.split(",") if node.strip()]
