"""Dead letters: events parked after too many failed deliveries, and what operators do with them.

A parked event stays in the group's pending list, held by the consumer `dead` (so `XPENDING`
shows it and trimming keeps nothing for it), and has a hash beside the stream,
`<p>:catalog-events:dead:<id>`, holding the stream entry's own fields (type, aggregate_id,
version, event_id, event) and why it was parked (error, deliveries, parked_at). The hash keeps
the payload even if the stream is trimmed past the entry. Parking writes both in one script
(`park_event.lua`), so no dead entry lacks its record.

Everything done to dead events is here, for the consumer (park), the operator's CLI and
`/internal/health` (list, count, show, replay, discard): one place reads and writes that shape.
Replaying re-appends the entry as it was (with `replay_of` naming the original) for a live
worker to apply (handlers ignore what was already applied), then drops the dead one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from redis.asyncio import Redis

from shared.events.envelope import ENTRY_FIELDS
from shared.keys import DEAD_CONSUMER, Keys
from shared.storage.lua import load

log = logging.getLogger(__name__)

# What the record adds to the entry's own fields.
RECORD_FIELDS = ("error", "deliveries", "parked_at")
LIST_LIMIT = 1000


class Parked(IntEnum):
    """park_event.lua's answers."""

    NOT_PARKED = 0  # no longer held by the expected consumer, or not idle that long
    PARKED = 1
    PAYLOAD_GONE = 2  # trimmed before it was applied: recorded and acknowledged


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class DeadLetters:
    def __init__(self, redis: Redis, keys: Keys, group: str, partition: int = 0) -> None:
        self.redis = redis
        self.keys = keys
        self.group = group
        self.partition = partition
        self.stream = keys.catalog_events(partition)
        self._park = load(redis, __file__, "park_event")

    async def park(self, message_id: bytes, owner: str, deliveries: int, min_idle_ms: int) -> Parked:
        """Move an event from `owner` to `dead` with its record, if `owner` still holds it and it
        has been idle `min_idle_ms`: of two workers that listed the same event, only the first
        parks it, the other gets NOT_PARKED."""
        text_id = message_id.decode()
        reply: Any = await self._park(
            keys=[
                self.stream,
                self.keys.event_errors(self.partition),
                self.keys.dead_event(text_id, self.partition),
            ],
            args=[
                self.group,
                text_id,
                owner,
                DEAD_CONSUMER,
                min_idle_ms,
                deliveries,
                datetime.now(UTC).isoformat(),
            ],
        )
        outcome = Parked(reply[0])
        if outcome == Parked.PAYLOAD_GONE:
            log.critical(
                "event %s was trimmed from the stream before it was applied; it is lost but for its"
                " record (HGETALL %s): %s",
                text_id,
                self.keys.dead_event(text_id, self.partition),
                text(reply[1]),
            )
        elif outcome == Parked.PARKED:
            log.error("event %s parked as dead after %d deliveries: %s", text_id, deliveries, text(reply[1]))
        return outcome

    async def ids(self, limit: int = LIST_LIMIT) -> list[str]:
        """The ids of dead events, oldest first (at most `limit`); none if there is no group."""
        if not await self._group_exists():
            return []
        entries: Any = await self.redis.xpending_range(
            self.stream, self.group, "-", "+", limit, consumername=DEAD_CONSUMER
        )
        return [text(entry["message_id"]) for entry in entries]

    async def count(self) -> int:
        """How many events are dead (parked under `dead`)."""
        if not await self._group_exists():
            return 0
        consumers: Any = await self.redis.xinfo_consumers(self.stream, self.group)
        return sum(int(c["pending"]) for c in consumers if text(c["name"]) == DEAD_CONSUMER)

    async def list(self, limit: int = LIST_LIMIT) -> list[dict[str, str]]:
        """Each dead event's record (`id` first), oldest first."""
        return [await self.record(message_id) for message_id in await self.ids(limit)]

    async def record(self, message_id: str) -> dict[str, str]:
        """The dead record of `message_id`: just `{"id": ...}` if it has none."""
        fields: Any = await self.redis.hgetall(self.keys.dead_event(message_id, self.partition))
        return {"id": message_id, **{text(k): text(v) for k, v in fields.items()}}

    async def show(self, message_id: str) -> dict[str, Any]:
        """An event: its stream entry (None if trimmed) and, if dead, its record."""
        entries: Any = await self.redis.xrange(self.stream, message_id, message_id)
        entry = {text(k): text(v) for k, v in entries[0][1].items()} if entries else None
        record = await self.record(message_id)
        return {"id": message_id, "entry": entry, "dead": record if len(record) > 1 else None}

    async def replay(self, message_id: str) -> str:
        """Re-append a dead event as it was (from its record), then drop it; its new stream id."""
        record = await self.record(message_id)
        if "event" not in record or not record["event"]:
            raise LookupError(f"{message_id} is not a dead event with a payload")
        entry: dict[Any, Any] = {name: record[name] for name in ENTRY_FIELDS if name in record}
        new_id: Any = await self.redis.xadd(self.stream, {**entry, "replay_of": message_id})
        await self._drop(message_id)
        return text(new_id)

    async def discard(self, message_id: str) -> None:
        """Drop a dead event without applying it."""
        if len(await self.record(message_id)) == 1:
            raise LookupError(f"{message_id} is not a dead event")
        await self._drop(message_id)

    async def _drop(self, message_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, message_id)
            pipe.delete(self.keys.dead_event(message_id, self.partition))
            await pipe.execute()

    async def _group_exists(self) -> bool:
        if not await self.redis.exists(self.stream):
            return False
        groups: Any = await self.redis.xinfo_groups(self.stream)
        return any(text(g["name"]) == self.group for g in groups)
