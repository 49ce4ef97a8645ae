"""redis-py's asyncio cluster client, made to behave as the services need on a Redis Cluster:
its failures are ConnectionErrors (what every fallback handles), and a process never has more
commands in flight than REDIS_MAX_CONNECTIONS, waiting for a turn as the single-node pool waits
for a connection, where redis-py would fail a command at once when its node's pool is full."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from redis.asyncio import Connection
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException


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


class AdmittedCluster(RedisCluster):
    """redis-py's cluster client with two changes.

    Finding no reachable node raises a ConnectionError: redis-py raises RedisClusterException,
    which is no RedisError, so every fallback that handles Redis being down (the limiter's, the
    cache's, the breaker's, the workers' backoff) would miss it and a request would answer 500.
    Seen when a process started while REDIS_URL's node was down.

    At most `admit(n)` commands and pipelines are in flight at once; the next waits for a turn,
    up to the admission's timeout, then fails with a ConnectionError. redis-py's per-node pools
    raise "Too many connections" the moment one is exhausted, which under a burst would make the
    rate limiter fail open exactly when it matters. Each admitted command or pipeline holds at
    most one connection per node, so no node's pool (of the same size) can run out.
    """

    _admission: asyncio.Semaphore | None = None
    _admission_timeout = 0.0

    def admit(self, limit: int, timeout: float) -> None:
        self._admission, self._admission_timeout = asyncio.Semaphore(limit), timeout

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        admission = self._admission
        if admission is None:
            yield
            return
        if admission.locked():  # the fast path takes no timer: most commands find a turn free
            try:
                await asyncio.wait_for(admission.acquire(), self._admission_timeout)
            except TimeoutError:
                raise RedisConnectionError(
                    f"every Redis connection of this process stayed busy for {self._admission_timeout} s"
                ) from None
        else:
            await admission.acquire()
        try:
            yield
        finally:
            admission.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.admitted():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return _AdmittedPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py's own

    async def initialize(self, *args: Any, **kwargs: Any) -> RedisCluster:
        try:
            return await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise RedisConnectionError(f"Redis Cluster: {exc}") from exc


class _AdmittedPipeline(ClusterPipeline):
    """A pipeline that takes one turn of its client's admission for its whole execution."""

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        client: AdmittedCluster = self.cluster_client  # type: ignore[assignment]
        async with client.admitted():
            return await super().execute(raise_on_error, allow_redirections)


def use_connection_class(cluster: RedisCluster, connection_class: type[Connection]) -> None:
    """RedisCluster fixes its nodes' connection class to Connection (or SSLConnection); nodes it
    discovers later take theirs from its `connection_kwargs`, the one it made so far from its own
    attribute. Plain TCP only: TLS keeps redis-py's SSLConnection."""
    kwargs: dict[str, Any] = cluster.connection_kwargs
    if kwargs.get("connection_class") is not Connection:
        return
    kwargs["connection_class"] = connection_class
    for node in cluster.startup_nodes:
        node.connection_class = connection_class
