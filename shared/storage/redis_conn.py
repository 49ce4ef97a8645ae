"""The Redis connection pool of a service process (redis-py asyncio).

One pool per process, sized by REDIS_MAX_CONNECTIONS, with connect and socket timeouts from
settings so that a stalled Redis costs a request at most those timeouts, never a hang. The pool
blocks (up to REDIS_SOCKET_TIMEOUT) when every connection is busy: redis-py's default pool
raises "Too many connections" instead, which under a burst would make the rate limiter fail
open exactly when it matters. Size it to the concurrency a process serves.

With REDIS_CLUSTER=true the client is redis-py's `RedisCluster`: REDIS_URL names any node, the
others are discovered (and rediscovered after a failover, on MOVED or a failed node). Its pools
are per node, REDIS_MAX_CONNECTIONS each, and they do not block: a command that finds its node's
pool exhausted fails at once (redis-py's cluster client has no blocking pool), so size it above
the concurrency a process serves. Code that runs on both types uses only what both offer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Connection, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from shared.config import Settings


class ClusterConnection(Connection):
    """redis-py's connection, but a write on a connection whose transport was torn down under it
    raises the ConnectionError it is, not an AttributeError or TypeError from inside asyncio's
    transport (redis-py issue #4287). On a failover redis-py's cluster client disconnects
    connections that other tasks are about to write to; the leaked error is no RedisError, so it
    would get past every fallback (it killed a worker in the failover test)."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        try:
            await super().send_packed_command(command, check_health)
        except (AttributeError, TypeError) as exc:  # packing is done before: only the transport
            await self.disconnect(nowait=True)
            raise RedisConnectionError(
                f"connection to {self.host}:{self.port} closed under a write: {exc!r}"
            ) from exc


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
        cluster = _Cluster.from_url(
            settings.redis_url,
            # More nodes to start from: a process (re)started while REDIS_URL's node is down (a
            # master that failed over, say) still finds the cluster through another.
            startup_nodes=[ClusterNode(host, int(port)) for host, _, port in _nodes(settings)],
            max_connections=settings.redis_max_connections,
            socket_timeout=settings.redis_socket_timeout + blocking_seconds,
            socket_connect_timeout=settings.redis_connect_timeout,
            health_check_interval=30,
        )
        _use_connection_class(cluster, ClusterConnection)
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


class _Cluster(RedisCluster):
    """redis-py's cluster client, but finding no reachable node raises a ConnectionError: redis-py
    raises RedisClusterException, which is no RedisError, so every fallback that handles Redis
    being down (the limiter's, the cache's, the breaker's, the workers' backoff) would miss it
    and a request would answer 500. Seen when a process started while REDIS_URL's node was down."""

    async def initialize(self, *args: Any, **kwargs: Any) -> RedisCluster:
        try:
            return await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise RedisConnectionError(f"Redis Cluster: {exc}") from exc


def _nodes(settings: Settings) -> list[tuple[str, str, str]]:
    """REDIS_CLUSTER_NODES ("host:port,host:port"), split."""
    return [node.strip().rpartition(":") for node in settings.redis_cluster_nodes.split(",") if node.strip()]


def _use_connection_class(cluster: RedisCluster, connection_class: type[Connection]) -> None:
    """RedisCluster fixes its nodes' connection class to Connection (or SSLConnection); nodes it
    discovers later take theirs from its `connection_kwargs`, the one it made so far from its own
    attribute. Plain TCP only: TLS keeps redis-py's SSLConnection."""
    kwargs: dict[str, Any] = cluster.connection_kwargs
    if kwargs.get("connection_class") is not Connection:
        return
    kwargs["connection_class"] = connection_class
    for node in cluster.startup_nodes:
        node.connection_class = connection_class
