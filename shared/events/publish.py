"""Appending events to the stream.

`append` puts a batch of entries in one script call (`stream_append.lua`): one round trip and
one reply instead of an XADD and a reply per entry. With the producer's `Guard`, the script
first checks that the stream still holds what this producer appended before: the epoch key it
wrote is there, and the stream's last id is not older than the last one it appended. If not,
Redis lost data (it restarted empty, or failed over to a replica that lagged): nothing is
appended, and the answer says how far the stream still goes, so the producer can send again
what was lost before new entries hide the gap (see app_product.outbox.healing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis

from shared.storage.lua import load


class Guard(NamedTuple):
    """What the producer knows of the stream: its epoch, and the id of the last entry it
    appended ('' when it has none to compare, which writes the epoch afresh)."""

    epoch: str
    last_id: str


class Appended(NamedTuple):
    ok: bool  # False: data was lost, nothing appended
    last_id: str  # of the last entry appended; or how far the stream goes when not ok


class StreamAppender:
    def __init__(self, redis: Redis, stream: str, epoch_key: str) -> None:
        self.stream = stream
        self._redis = redis
        self._epoch_key = epoch_key
        self._append = load(redis, __file__, "stream_append")

    async def append(self, entries: Sequence[Mapping[str, Any]], guard: Guard) -> Appended:
        """Append `entries` (each with the same field names, in the same order), in order; with
        no entries, only check the guard. Raises RedisError if Redis refuses."""
        names = list(entries[0]) if entries else []
        values = [entry[name] for entry in entries for name in names]
        reply: Any = await self._append(
            keys=[self.stream, self._epoch_key],
            args=[guard.epoch, guard.last_id, len(names), *names, *values],
        )
        return Appended(bool(reply[0]), reply[1].decode())

    async def append_one(self, entry: Mapping[str, Any]) -> str:
        """Append one entry, unguarded; its stream id (for a caller that reports it)."""
        fields: dict[Any, Any] = dict(entry)  # Any: what redis-py's xadd signature accepts
        stream_id: Any = await self._redis.xadd(self.stream, fields)
        return str(stream_id.decode())
