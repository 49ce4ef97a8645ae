"""How the event pipeline looks from Redis: live workers, the group's lag and pending entries by
consumer, dead events. Read by `/internal/health` and the operator's CLI, never on a hot path."""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from shared.events.dead_letters import DeadLetters, text
from shared.keys import DEAD_CONSUMER, Keys


class PartitionStatus(msgspec.Struct, kw_only=True):
    partition: int
    stream: str
    stream_length: int
    lag: int | None  # entries not yet delivered to the group (None: Redis cannot tell)
    pending: int  # delivered, not acknowledged: in flight, being retried, or dead
    dead: int


class PipelineStatus(msgspec.Struct, kw_only=True):
    """The pipeline in total (over every partition of the stream), then each partition."""

    status: str  # "ok", or "no live worker"
    workers: int
    stream_length: int
    lag: int | None
    pending: int
    dead: int
    partitions: list[PartitionStatus] = msgspec.field(default_factory=list)


def stream_statuses(redis: Redis, keys: Keys, group: str) -> list[StreamStatus]:
    """A status reader per partition of the stream (STREAM_PARTITIONS)."""
    return [StreamStatus(redis, keys, group, i) for i in range(keys.partitions)]


async def pipeline_status(redis: Redis, keys: Keys, group: str) -> PipelineStatus:
    """Every partition's status, and their sums."""
    statuses = stream_statuses(redis, keys, group)
    workers = len(await statuses[0].live_workers())
    parts = [await status.read() for status in statuses]
    lags = [part.lag for part in parts]
    return PipelineStatus(
        status="ok" if workers else "no live worker",
        workers=workers,
        stream_length=sum(part.stream_length for part in parts),
        lag=None if None in lags else sum(lag for lag in lags if lag is not None),
        pending=sum(part.pending for part in parts),
        dead=sum(part.dead for part in parts),
        partitions=parts,
    )


class StreamStatus:
    def __init__(self, redis: Redis, keys: Keys, group: str, partition: int = 0) -> None:
        self.redis = redis
        self.keys = keys
        self.group = group
        self.partition = partition
        self.stream = keys.catalog_events(partition)
        self.dead_letters = DeadLetters(redis, keys, group, partition)

    async def live_workers(self) -> list[str]:
        """The heartbeat keys that have not expired: one per live worker."""
        pattern = self.keys.worker_heartbeat("*")
        return [text(key) async for key in self.redis.scan_iter(match=pattern, count=100)]

    async def groups(self) -> list[dict[str, str]]:
        """XINFO GROUPS of the stream, as text (none if the stream does not exist)."""
        if not await self.redis.exists(self.stream):
            return []
        groups: Any = await self.redis.xinfo_groups(self.stream)
        return [{text(k): text(v) for k, v in group.items()} for group in groups]

    async def pending_by_consumer(self) -> dict[str, int]:
        """Pending entries per consumer of the group, `dead` included."""
        if not any(group["name"] == self.group for group in await self.groups()):
            return {}
        summary: Any = await self.redis.xpending(self.stream, self.group)
        return {text(c["name"]): int(c["pending"]) for c in summary.get("consumers", [])}

    async def oldest_pending_age_seconds(self) -> float:
        """How old (by its id's time) the oldest event pending at a consumer other than `dead`
        is: 0 when none is. One XPENDING per consumer holding events."""
        now_ms = (await self.redis.time())[0] * 1000
        oldest = now_ms
        for consumer, count in (await self.pending_by_consumer()).items():
            if consumer == DEAD_CONSUMER or not count:
                continue
            first: Any = await self.redis.xpending_range(
                self.stream, self.group, "-", "+", 1, consumername=consumer
            )
            if first:
                oldest = min(oldest, int(text(first[0]["message_id"]).partition("-")[0]))
        return max(0.0, (now_ms - oldest) / 1000)

    async def read(self) -> PartitionStatus:
        group = next((g for g in await self.groups() if g["name"] == self.group), None)
        lag = group.get("lag") if group else None
        return PartitionStatus(
            partition=self.partition,
            stream=self.stream,
            stream_length=int(await self.redis.xlen(self.stream)),
            lag=int(lag) if lag not in (None, "None") else None,
            pending=int(group["pending"]) if group else 0,
            dead=await self.dead_letters.count(),
        )

    async def summary(self) -> PipelineStatus:
        """This partition's status, with the live workers: what one stream's metrics show."""
        workers = await self.live_workers()
        part = await self.read()
        return PipelineStatus(
            status="ok" if workers else "no live worker",
            workers=len(workers),
            stream_length=part.stream_length,
            lag=part.lag,
            pending=part.pending,
            dead=part.dead,
        )
