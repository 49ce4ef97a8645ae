"""Appending events to the stream: a batch of entries in one script call (`stream_append.lua`),
one round trip and one reply instead of an XADD and a reply per entry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from shared.storage.lua import load


class StreamAppender:
    def __init__(self, redis: Redis, stream: str) -> None:
        self.stream = stream
        self._redis = redis
        self._append = load(redis, __file__, "stream_append")

    async def append(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Append `entries` (each with the same field names, in the same order), in order.
        Raises RedisError if Redis refuses; RuntimeError if it appended fewer than asked (a bug,
        not an outage: the caller must not mark them sent)."""
        if not entries:
            return
        names = list(entries[0])
        values = [entry[name] for entry in entries for name in names]
        appended = await self._append(keys=[self.stream], args=[len(names), *names, *values])
        if appended != len(entries):
            raise RuntimeError(f"appended {appended} of {len(entries)} events")

    async def append_one(self, entry: Mapping[str, Any]) -> str:
        """Append one entry; its stream id (for a caller that reports it)."""
        fields: dict[Any, Any] = dict(entry)  # Any: what redis-py's xadd signature accepts
        stream_id: Any = await self._redis.xadd(self.stream, fields)
        return str(stream_id.decode())
