"""The event stream in partitions (STREAM_PARTITIONS): which partition an event goes to, and the
guard that keeps the count from changing under events still in flight.

An event goes to the partition of its aggregate (`aggregate_id mod STREAM_PARTITIONS`), so one
product's events stay in one stream, in commit order, and its handlers see them in order.
Different products' events may be applied in any order across partitions: no handler depends
on another aggregate's order (a category rename reaches carts as its products' own events).
Each partition is a stream of its own, with its own group, retries, dead events, trimming and
relay state; on a cluster each is in its own slot (`shared.keys`), spread over the masters.

Changing the count moves aggregates between partitions: an event still waiting in its old
partition could be applied after a newer one in the new, and a worker still on the old count
would never read the new partitions. So the count in force is kept in Redis
(`<p>:catalog-events:partitions`). The relay adopts a new count only once every old partition
is drained (nothing undelivered, nothing pending, nothing dead), and refuses to start until
then; a worker refuses to start on a count other than the one in force. The procedure (the
README's): stop the catalog's writes or just the relay, let the workers drain, replay or
discard dead events, then restart everything with the new count.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.keys import Keys


class PartitionsChanged(Exception):
    """STREAM_PARTITIONS differs from the count in force and that is not safe now."""


def partition_of(aggregate_id: int, count: int) -> int:
    return aggregate_id % count


async def in_force(redis: Redis, keys: Keys) -> int | None:
    """The partition count in force (None: none recorded yet, a new system)."""
    held = await redis.get(keys.stream_partitions())
    return None if held is None else int(held)


async def check_worker(redis: Redis, keys: Keys) -> None:
    """Raise PartitionsChanged if this worker's count is not the one in force."""
    held = await in_force(redis, keys)
    if held is not None and held != keys.partitions:
        raise PartitionsChanged(
            f"STREAM_PARTITIONS is {keys.partitions} here but {held} is in force: a worker on"
            " another count would miss partitions; start it with the count in force, or change"
            " the count as the README says"
        )


async def adopt(redis: Redis, keys: Keys) -> None:
    """The relay's check before it appends: record its count if none is, keep it if it is the
    one in force, and switch to it only if every old partition is drained. Raises
    PartitionsChanged otherwise."""
    held = await in_force(redis, keys)
    if held == keys.partitions:
        return
    if held is not None:
        old = Keys(keys.prefix, cluster=keys.cluster, partitions=held)
        for partition in range(held):
            busy = await _busy(redis, old.catalog_events(partition))
            if busy:
                raise PartitionsChanged(
                    f"STREAM_PARTITIONS changes from {held} to {keys.partitions}, but partition"
                    f" {partition} ({old.catalog_events(partition)}) still has {busy}: let the"
                    " workers drain it (and replay or discard dead events) first"
                )
    await redis.set(keys.stream_partitions(), keys.partitions)


async def _busy(redis: Redis, stream: str) -> str:
    """What is still in flight on `stream` ('' if nothing): entries a consumer group has not
    read or acknowledged, or, before any group exists, any entry (the workers' group, made later
    from the stream's start, would read them)."""
    try:
        groups: Any = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream: nothing in flight
        return ""
    if not groups:
        length = int(await redis.xlen(stream))
        return f"{length} event(s) no worker has read yet" if length else ""
    for info in groups:
        lag, pending = info.get("lag"), int(info["pending"])
        if lag is None or int(lag) or pending:
            undelivered = "an unknown number of" if lag is None else str(lag)
            return f"{undelivered} undelivered and {pending} pending event(s)"
    return ""
