"""The services' Redis Cluster client (shared.storage.cluster_client): a burst larger than
REDIS_MAX_CONNECTIONS waits for turns, as on one Redis, instead of failing; a turn that never
comes fails as a ConnectionError, which the fallbacks handle."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from devtools.redis_cluster import RedisCluster
from shared.config import Settings, load_settings
from shared.storage.redis_conn import create_redis


def cluster_settings(cluster: RedisCluster, connections: int) -> Settings:
    env = {"ENV": "test", "REDIS_URL": cluster.url, "REDIS_CLUSTER": "true"}
    return load_settings(Settings, {**env, "REDIS_MAX_CONNECTIONS": str(connections)})


async def test_a_burst_beyond_the_pool_waits_for_turns_and_no_node_opens_more(redis_cluster):
    redis = create_redis(cluster_settings(redis_cluster, connections=2))
    key = f"t{uuid.uuid4().hex[:8]}"
    try:
        # 200 commands at once over every master, and pipelines among them: each would need a
        # connection of its own; redis-py alone fails the third on a node with MaxConnectionsError.
        async def pipelined(i: int) -> list[object]:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.incr(f"{key}:{i}")
                pipe.incr(f"{key}:{i + 1}")
                return await pipe.execute()

        answers = await asyncio.gather(
            *(redis.incr(f"{key}:{i}") for i in range(150)), *(pipelined(i) for i in range(50))
        )
        assert len(answers) == 200
        nodes = redis.get_nodes()  # type: ignore[attr-defined]
        assert max(len(node._connections) for node in nodes) <= 2
        assert sum([int(await redis.get(f"{key}:{i}") or 0) for i in range(150)]) == 150 + 2 * 50
    finally:
        await redis.aclose()


async def test_a_turn_that_does_not_come_in_time_is_a_connection_error(redis_cluster):
    redis = create_redis(cluster_settings(redis_cluster, connections=1))
    try:
        async with redis.admitted():  # type: ignore[attr-defined]  # the one turn, held
            with pytest.raises(RedisConnectionError, match="stayed busy"):
                await redis.ping()
        assert await redis.ping()  # the turn is back
    finally:
        await redis.aclose()
