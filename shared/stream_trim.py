"""Bounding the catalog event stream without ever losing an event someone still needs.

`XTRIM MINID` removes entries older than an id. The id chosen here is the oldest of:
- for each consumer group, the first entry it has not read yet (just after its last delivered
  id): unread entries stay;
- for each live consumer, its oldest pending entry: events being retried stay (Redis trims
  pending entries too, and their payload would then read as nil). Dead events do not count:
  their payload is kept beside the stream (`<p>:catalog-events:dead:<id>`), so a parked event
  never holds the stream back;
- now minus the retention, so recent history stays for operators to look at.
With no consumer group at all nothing is trimmed: no one has read anything yet.
Entries below the chosen id were read and acknowledged by every group, so a race with a worker
cannot matter: whatever it does next concerns newer entries. Redis 7 (Debian's) has all of it.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from shared.keys import DEAD_CONSUMER


def _id(value: Any) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else str(value)
    millis, _, sequence = text.partition("-")
    return int(millis), int(sequence or 0)


async def safe_min_id(redis: Redis, stream: str, now_ms: int, retention_ms: int) -> str | None:
    """The id below which every entry may go, or None if nothing may."""
    groups: Any = await redis.xinfo_groups(stream)
    if not groups:
        return None
    candidates = [(now_ms - retention_ms, 0)]
    for group in groups:
        last = _id(group["last-delivered-id"])
        candidates.append((last[0], last[1] + 1))  # the first entry not yet read
        consumers: Any = await redis.xinfo_consumers(stream, group["name"])
        for consumer in consumers:
            name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
            if name == DEAD_CONSUMER or not int(consumer["pending"]):
                continue
            oldest: Any = await redis.xpending_range(stream, group["name"], "-", "+", 1, consumername=name)
            if oldest:
                candidates.append(_id(oldest[0]["message_id"]))
    millis, sequence = min(candidates)
    return f"{max(millis, 0)}-{sequence}"


async def trim(redis: Redis, stream: str, retention_seconds: float) -> int:
    """Trim what no one needs; how many entries went. Approximate (`~`): Redis removes whole
    macro nodes only, never an entry at or above the id."""
    now: Any = await redis.time()
    now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
    min_id = await safe_min_id(redis, stream, now_ms, int(retention_seconds * 1000))
    if min_id is None:
        return 0
    removed: Any = await redis.xtrim(stream, minid=min_id, approximate=True)
    return int(removed)
