"""Retrying failed events and taking over those of dead workers; parking the hopeless ones.

A pending event is one of three things. It failed (its error is recorded): it is retried once
idle for `retry_base_seconds`, then twice as long after each further failure, so a dependency
that is down is not hammered. Its worker died (the worker's heartbeat key expired): it is taken
over the same way. Or another live worker is still applying it: it is left alone, so no event
is applied twice. The reclaiming worker's own entries are never in flight (reclaim runs between
batches), so they are retried like failed ones even with no error recorded: an XACK or an error
record that was lost must not leave an event pending forever. Any worker may reclaim; the holder
check in `claim_pending.lua` lets only one of them have each event. An event delivered
`max_deliveries` times is parked as dead (`shared.events.dead_letters`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.events.dead_letters import DeadLetters, Parked
from shared.keys import DEAD_CONSUMER, Keys
from shared.storage.lua import load

Message = tuple[bytes, dict[bytes, bytes]]
PAGE = 100  # pending entries per XPENDING call


class _Config(Protocol):
    @property
    def retry_base_seconds(self) -> float: ...
    @property
    def max_deliveries(self) -> int: ...


class Consumer(Protocol):
    """What reclaiming needs of the consumer it works for (shared.events.consumer.Consumer)."""

    redis: Redis
    stream: str
    group: str
    consumer: str
    errors: str

    @property
    def config(self) -> _Config: ...
    async def apply(self, messages: Sequence[Message]) -> list[bytes]: ...
    def group_lost(self) -> None: ...


class Reclaimer:
    def __init__(self, consumer: Consumer, keys: Keys, dead_letters: DeadLetters) -> None:
        self._consumer = consumer
        self._keys = keys
        self._dead = dead_letters
        self._claim_script = load(consumer.redis, __file__, "claim_pending")
        self.parked = 0
        self.retried = 0  # pending events this consumer claimed and tried again

    async def reclaim(self) -> int:
        """Retry or park what is due among the group's pending events; how many it handled."""
        redis, handled = self._consumer.redis, 0
        for owner in await self._holders():
            in_flight = owner != self._consumer.consumer and bool(
                await redis.exists(self._keys.worker_heartbeat(owner))
            )
            async for page in self._pending_pages(owner):
                errors: Any = await redis.hmget(
                    self._consumer.errors, [entry["message_id"] for entry in page]
                )
                for entry, error in zip(page, errors, strict=True):
                    if error is None and in_flight:
                        continue
                    handled += await self._reclaim_one(entry, owner)
        return handled

    async def _holders(self) -> list[str]:
        """The consumers holding pending events, but `dead`: listing by consumer, rather than
        the whole pending list, makes parked events (which stay pending under `dead`) cost
        nothing however many there are."""
        consumer = self._consumer
        try:
            consumers: Any = await consumer.redis.xinfo_consumers(consumer.stream, consumer.group)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost the stream: nothing is pending
                consumer.group_lost()
                return []
            raise
        names = (c["name"].decode() for c in consumers if c["pending"])
        return [name for name in names if name != DEAD_CONSUMER]

    async def _pending_pages(self, owner: str) -> AsyncIterator[list[Any]]:
        """`owner`'s pending entries idle for at least the first retry wait, a page at a time."""
        consumer, start = self._consumer, "-"
        while True:
            page: Any = await consumer.redis.xpending_range(
                consumer.stream, consumer.group, start, "+", PAGE, consumername=owner, idle=self.wait_ms(1)
            )
            if page:
                yield page
            if len(page) < PAGE:
                return
            start = "(" + page[-1]["message_id"].decode()  # exclusive: the next page

    async def _reclaim_one(self, entry: dict[str, Any], owner: str) -> int:
        """Park the entry if it was delivered too often, else retry it once its wait is over."""
        deliveries, idle = int(entry["times_delivered"]), int(entry["time_since_delivered"])
        wait_ms = self.wait_ms(deliveries)
        if deliveries >= self._consumer.config.max_deliveries:
            return await self._park(entry["message_id"], owner, deliveries, self.wait_ms(1))
        if idle >= wait_ms:
            return await self._retry(entry["message_id"], owner, deliveries, wait_ms)
        return 0

    def wait_ms(self, deliveries: int) -> int:
        """How long an event delivered `deliveries` times waits before its next try."""
        return int(self._consumer.config.retry_base_seconds * 1000 * 2 ** (deliveries - 1))

    async def _claim(
        self, message_id: bytes, owner: str, min_idle_ms: int
    ) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        """Move a pending event from `owner` to this consumer if `owner` still holds it and it
        has been idle `min_idle_ms` (`claim_pending.lua`): the listing it was chosen from may be
        stale. The event with its fields; with None if its payload is gone (then it is not
        claimed, as XCLAIM would drop it: the caller parks it); or nothing."""
        consumer = self._consumer
        reply: Any = await self._claim_script(
            keys=[consumer.stream], args=[consumer.group, message_id, owner, consumer.consumer, min_idle_ms]
        )
        return [
            (entry_id, dict(zip(fields[::2], fields[1::2], strict=True)) if fields else None)
            for entry_id, fields in reply
        ]

    async def _retry(self, message_id: bytes, owner: str, deliveries: int, min_idle_ms: int) -> int:
        claimed = await self._claim(message_id, owner, min_idle_ms)
        if not claimed:
            return 0
        [(claimed_id, fields)] = claimed
        if fields is None:  # trimmed before it was applied: nothing to retry, only a record to keep
            return await self._park(message_id, owner, deliveries, min_idle_ms)
        self.retried += 1
        consumer = self._consumer
        if await consumer.apply([(claimed_id, fields)]):
            # One MULTI: an acknowledged event never keeps an error that reads as still failing.
            async with consumer.redis.pipeline(transaction=True) as pipe:
                pipe.xack(consumer.stream, consumer.group, claimed_id)
                pipe.hdel(consumer.errors, claimed_id)
                await pipe.execute()
        return 1

    async def _park(self, message_id: bytes, owner: str, deliveries: int, min_idle_ms: int) -> int:
        if await self._dead.park(message_id, owner, deliveries, min_idle_ms) == Parked.NOT_PARKED:
            return 0
        self.parked += 1
        return 1
