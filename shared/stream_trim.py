"""Bounding the catalog event stream without ever losing an event someone still needs.

`XTRIM MINID` removes entries older than an id. The id chosen here is the oldest of:
- for each consumer group, the first entry it has not read yet (just after its last delivered
  id): unread entries stay;
- for each consumer group, its oldest pending entry not parked as dead: events being retried
  stay (Redis trims pending entries too, and a later XCLAIM then drops them from the group).
  It is read from the group's whole pending list in id order, not consumer by consumer: a
  retry moves an entry to another consumer (XCLAIM), and asking each consumer in turn could
  miss one that moved to a consumer already asked. Dead events do not count: their payload is
  kept beside the stream (`<p>:catalog-events:dead:<id>`), so a parked event never holds the
  stream back;
- now minus the retention, so recent history stays for operators to look at.
With no consumer group at all nothing is trimmed: no one has read anything yet.
Entries below the chosen id were read and acknowledged by every group, so a race with a worker
cannot matter: whatever it does next concerns newer entries. Redis 7 (Debian's) has all of it.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from shared.keys import DEAD_CONSUMER

_PAGE, _PEL_PAGES = 100, 10  # at most 1,000 dead events looked past to find a live one


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id(value: Any) -> tuple[int, int]:
    millis, _, sequence = _text(value).partition("-")
    return int(millis), int(sequence or 0)


async def safe_min_id(redis: Redis, stream: str, now_ms: int, retention_ms: int) -> str | None:
    """The id below which every entry may go, or None if nothing may."""
    groups: Any = await redis.xinfo_groups(stream)
    if not groups:
        return None
    candidates = [(now_ms - retention_ms, 0)]
    for group in groups:  # read before the pending lists: whatever is delivered later is newer
        last = _id(group["last-delivered-id"])
        candidates.append((last[0], last[1] + 1))  # the first entry not yet read
        oldest = await _oldest_live_pending(redis, stream, group["name"])
        if oldest is not None:
            candidates.append(oldest)
    millis, sequence = min(candidates)
    return f"{max(millis, 0)}-{sequence}"


async def _oldest_live_pending(redis: Redis, stream: str, group: Any) -> tuple[int, int] | None:
    """The group's oldest pending entry held by a consumer other than `dead`, if any. Each page
    is one XPENDING, so one read sees every holder of its entries at once."""
    start: Any = "-"
    for _ in range(_PEL_PAGES):
        page: Any = await redis.xpending_range(stream, group, start, "+", _PAGE)
        for entry in page:
            if _text(entry["consumer"]) != DEAD_CONSUMER:
                return _id(entry["message_id"])
        if len(page) < _PAGE:
            return None
        start = "(" + _text(page[-1]["message_id"])  # exclusive: the next page
    return _id(page[-1]["message_id"])  # only dead ones so far: keep the rest, unread or not


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
