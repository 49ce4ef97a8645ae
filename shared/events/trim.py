"""Bounding the catalog event stream without ever losing an event someone still needs.

`XTRIM MINID` removes entries older than an id. `stream_trim.lua` chooses the oldest of:
- for each consumer group, the first entry it has not read yet (just after its last delivered
  id): unread entries stay;
- for each live consumer, its oldest pending entry: events being retried stay (Redis trims
  pending entries too, and a later XCLAIM then drops them from the group). Dead events do not
  count: their payload is kept beside the stream (`<p>:catalog-events:dead:<id>`), so a parked
  event never holds the stream back;
- now minus the retention, so recent history stays for operators to look at.
With no consumer group at all nothing is trimmed: no one has read anything yet.

It reads the groups and pending lists and trims in one script. Read one call at a time, a
retry moving an entry between consumers (XCLAIM) could hide it between two reads, and the
entry would be trimmed while pending; found by the trim-under-load test. Redis 7 (Debian's)
has every command it needs.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from shared.keys import DEAD_CONSUMER
from shared.storage.lua import load


async def trim(redis: Redis, stream: str, retention_seconds: float) -> int:
    """Trim what no one needs; how many entries went."""
    script = load(redis, __file__, "stream_trim")
    removed: Any = await script(keys=[stream], args=[int(retention_seconds * 1000), DEAD_CONSUMER])
    return int(removed)
