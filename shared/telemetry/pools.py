"""How full a process's connection pools are: connections in use and the most each may open."""

from __future__ import annotations

from typing import Any

import databases
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from shared.storage.postgres import ReadPool
from shared.telemetry.metrics import Metrics

_IN_USE = "Connections of the pool in use now."
_SIZE = "The most connections the pool may open."


def _asyncpg_in_use(pool: Any) -> float:
    return 0.0 if pool is None else float(pool.get_size() - pool.get_idle_size())


def expose_pools(
    metrics: Metrics, redis: Redis, db: databases.Database | None = None, reads: ReadPool | None = None
) -> None:
    """The Redis pool, and the PostgreSQL pools (`main`, and `reads` for the read pool)."""
    in_use, size = "storefront_db_pool_connections_in_use", "storefront_db_pool_max_connections"
    # databases and our read pool keep their asyncpg pools unexposed; asyncpg counts publicly.
    if db is not None:
        metrics.gauge(in_use, _IN_USE, lambda: _asyncpg_in_use(db._backend._pool), pool="main")
        metrics.gauge(size, _SIZE, lambda: db.options.get("max_size", 0), pool="main")
    if reads is not None:
        metrics.gauge(in_use, _IN_USE, lambda: _asyncpg_in_use(reads._pool), pool="reads")
        metrics.gauge(size, _SIZE, lambda: reads._options["max_size"], pool="reads")
    if isinstance(redis, RedisCluster):
        _expose_cluster_pools(metrics, redis)
        return
    connections = redis.connection_pool
    # redis-py keeps this list on its pool; there is no public count.
    metrics.gauge(
        "storefront_redis_pool_connections_in_use",
        _IN_USE,
        lambda: len(getattr(connections, "_in_use_connections", ())),
    )
    metrics.gauge("storefront_redis_pool_max_connections", _SIZE, lambda: connections.max_connections)


def _expose_cluster_pools(metrics: Metrics, cluster: RedisCluster) -> None:
    """A cluster client has a pool per node, each up to REDIS_MAX_CONNECTIONS: the sums over the
    nodes it knows now (the masters; replicas too once it has seen them). redis-py keeps each
    node's connections, and its free ones, in lists."""

    def in_use() -> float:
        return float(sum(len(n._connections) - len(n._free) for n in cluster.get_nodes()))

    def size() -> float:
        return float(sum(n.max_connections for n in cluster.get_nodes()))

    metrics.gauge("storefront_redis_pool_connections_in_use", _IN_USE, in_use)
    metrics.gauge("storefront_redis_pool_max_connections", _SIZE, size)
