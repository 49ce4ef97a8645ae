"""Which Redis the suite runs against: a single server (the default) or, with
`STOREFRONT_TEST_REDIS=cluster`, the session's 3+3 Redis Cluster, so every Redis-dependent
integration test runs in both modes (CI runs both). Tests build their clients and key names
through here, so they match what the services use in the mode at hand."""

from __future__ import annotations

import os
from typing import Any

import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from shared.keys import Keys

MODE_VARIABLE = "STOREFRONT_TEST_REDIS"
CLUSTER = os.environ.get(MODE_VARIABLE, "single") == "cluster"


def test_keys(prefix: str, partitions: int = 1) -> Keys:
    """The key names the services use for `prefix` in this mode."""
    return Keys(prefix, cluster=CLUSTER, partitions=partitions)


# Not a test, although its name says so: a test module that imports it would have pytest
# collect it (and fail it, for want of a `prefix` fixture).
test_keys.__test__ = False  # type: ignore[attr-defined]


def client(url: str, **options: Any) -> Redis:
    """A client of the suite's Redis: a cluster client in cluster mode."""
    if CLUSTER:
        cluster: Any = RedisCluster.from_url(url, **options)
        return cluster  # typed as Redis: tests use commands both have
    return Redis.from_url(url, **options)


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A blocking client of the suite's Redis (for tests that are not coroutines)."""
    if CLUSTER:
        cluster: Any = redis.RedisCluster.from_url(url, **options)
        return cluster
    return redis.Redis.from_url(url, **options)


def mode_env() -> dict[str, str]:
    """What a service's environment adds in this mode."""
    return {"REDIS_CLUSTER": "true"} if CLUSTER else {}
