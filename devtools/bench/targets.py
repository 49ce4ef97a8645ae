"""The Redis set-ups a benchmark runs against: a throwaway single Redis, a throwaway 3+3 Redis
Cluster, or both at once (scripts/bench_cluster), so that rounds on one and the other alternate
in the same run and the noisy machine weighs on both alike.

A `Target` says how a service reaches its Redis (the environment: REDIS_URL, REDIS_CLUSTER,
STREAM_PARTITIONS), makes the benchmark's own client and key names, and sums the CPU time of
its redis-server processes (replicas included: they replay every write their master makes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster as ClusterClient

from devtools.bench.common import cpu_seconds
from devtools.redis_cluster import throwaway_redis_cluster
from devtools.servers import throwaway_redis
from shared.keys import Keys


@dataclass(frozen=True)
class Target:
    name: str  # "single" or "cluster": how figures are labelled
    url: str
    cluster: bool
    pids: tuple[int, ...]  # every redis-server of the set-up

    def env(self, partitions: int = 1) -> dict[str, str]:
        """A service's Redis settings for this set-up."""
        return {
            "REDIS_URL": self.url,
            "REDIS_CLUSTER": "true" if self.cluster else "false",
            "STREAM_PARTITIONS": str(partitions),
        }

    def keys(self, prefix: str, partitions: int = 1) -> Keys:
        return Keys(prefix, cluster=self.cluster, partitions=partitions)

    def client(self) -> Redis:
        """A plain client of the benchmark's own (a cluster client on a cluster)."""
        if self.cluster:
            # Typed as Redis, as the services type theirs: only commands both clients have.
            return ClusterClient.from_url(self.url)  # type: ignore[return-value]
        return Redis.from_url(self.url)

    def cpu_seconds(self) -> float:
        """CPU time its redis-server processes have used so far."""
        return sum(cpu_seconds(pid) for pid in self.pids)


def _pid(port: int) -> int:
    # The servers' own Popen objects are private to devtools.servers; Redis tells its pid.
    with redis.Redis(port=port) as client:
        return int(client.info("server")["process_id"])


@contextlib.contextmanager
def single_target() -> Iterator[Target]:
    with throwaway_redis() as server:
        yield Target("single", server.url, False, (_pid(server.port),))


@contextlib.contextmanager
def both_targets() -> Iterator[tuple[Target, Target]]:
    """A single Redis and a 3+3 cluster, running side by side."""
    with single_target() as single, throwaway_redis_cluster() as nodes:
        yield single, Target("cluster", nodes.url, True, tuple(_pid(port) for port in nodes.ports))
