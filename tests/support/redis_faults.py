"""Redis faults for the chaos test, on one server or on a 3+3 cluster, through one interface: a
node killed and started again, Redis data lost while the workers are behind, and on a cluster a
lossy failover (a replica promoted without the last stream entries its master had accepted)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster as ClusterClient

from devtools.redis_cluster import RedisCluster
from devtools.servers import RedisServer

# More than the loopback socket buffers between a master and its stalled replica hold (a few
# MB each way), so what the master accepts after it stays in the master's memory alone.
_REPLICATION_PADDING_BYTES = 32 * 1024 * 1024


class RedisFaults(Protocol):
    name: str

    @property
    def url(self) -> str: ...

    def env(self) -> dict[str, str]:
        """What the services' environment adds for this Redis."""
        ...

    def client(self) -> Redis: ...

    async def kill_a_node(self, rng: random.Random) -> None:
        """Kill a node and start it again (a cluster's master: after its replica took over)."""
        ...

    async def lose_data(self, stream: str) -> None:
        """`stream` and every key beside it come back empty."""
        ...


class OneRedis:
    """One redis-server with an append-only file: a kill loses at most the last second."""

    name = "single"

    def __init__(self, server: RedisServer) -> None:
        self.server = server

    @property
    def url(self) -> str:
        return self.server.url

    def env(self) -> dict[str, str]:
        return {}

    def client(self) -> Redis:
        return Redis.from_url(self.url)

    async def kill_a_node(self, rng: random.Random) -> None:
        await asyncio.to_thread(self.server.kill)
        await asyncio.sleep(rng.uniform(0.2, 1.0))  # how long it stays down
        await asyncio.to_thread(self.server.start)

    async def lose_data(self, stream: str) -> None:
        await asyncio.to_thread(self.server.lose_data)


class ClusterRedis:
    """A 3+3 Redis Cluster of the test's own (it kills nodes)."""

    name = "cluster"

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self.failover_seconds: list[float] = []  # from a master's kill to every slot served again

    @property
    def url(self) -> str:
        return self.cluster.url

    def env(self) -> dict[str, str]:
        # A process (re)started after REDIS_URL's node died finds the cluster through the others.
        nodes = ",".join(f"127.0.0.1:{port}" for port in self.cluster.ports)
        return {"REDIS_CLUSTER": "true", "REDIS_CLUSTER_NODES": nodes}

    def client(self) -> Redis:
        cluster: Any = ClusterClient.from_url(self.url)
        return cluster  # typed as Redis: the checks use commands both have

    async def kill_a_node(self, rng: random.Random) -> None:
        master = rng.choice(await asyncio.to_thread(self.cluster.masters))
        await self._fail_over(master)

    async def lose_data(self, stream: str) -> None:
        master = await asyncio.to_thread(self.cluster.master_of, stream)
        await asyncio.to_thread(self.cluster.lose_shard, master)

    async def lossy_failover(self, stream: str, appended: Callable[[], Awaitable[None]]) -> int:
        """Stall the replica of `stream`'s master and fill its replication link, await
        `appended` (new entries in `stream`, on the master alone), then kill the master: the
        replica takes over without them. Returns how many of the stream's last entries before
        the kill the new master lacks."""
        master = await asyncio.to_thread(self.cluster.master_of, stream)
        [replica] = await asyncio.to_thread(self.cluster.replicas_of, master)
        async with self.client() as redis:
            with replica.stalled():
                # The padding shares the stream's slot (its hash tag), so its master's link carries it.
                await redis.set(f"{stream}:replication-padding", b"x" * _REPLICATION_PADDING_BYTES)
                await appended()
                last = [entry_id for entry_id, _ in await redis.xrevrange(stream, count=20)]
                killed_at = time.monotonic()
                await asyncio.to_thread(self.cluster.kill, master)
            await self._failed_over(killed_at)
            lost = [entry_id for entry_id in last if not await redis.xrange(stream, entry_id, entry_id)]
        await asyncio.to_thread(self.cluster.restart, master)
        return len(lost)

    async def _fail_over(self, master: RedisServer) -> None:
        killed_at = time.monotonic()
        await asyncio.to_thread(self.cluster.kill, master)
        await self._failed_over(killed_at)
        await asyncio.to_thread(self.cluster.restart, master)

    async def _failed_over(self, killed_at: float) -> None:
        await asyncio.to_thread(self.cluster.wait_for_failover)
        self.failover_seconds.append(time.monotonic() - killed_at)
