"""A worker's heartbeat: a key with a TTL that says the worker is alive, so that others leave its
pending events alone until it expires (then they take them over, shared.events.reclaim)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.outage import Outage
from shared.signals import sleep_unless_stopped


class Heartbeat:
    def __init__(self, redis: Redis, key: str, ttl_seconds: int, outage: Outage) -> None:
        self.key = key
        self._redis = redis
        self._ttl = ttl_seconds
        self._outage = outage
        self.at = float("-inf")  # time.monotonic() of the last refresh that Redis took

    def age(self) -> float:
        """Seconds since the last refresh (-1 before the first)."""
        return -1.0 if self.at == float("-inf") else time.monotonic() - self.at

    async def keep(self, done: asyncio.Event) -> None:
        """Refresh the key every third of its TTL until `done`, beside the worker's loop rather
        than in it: a batch applied one event at a time can take longer than the TTL, and other
        workers must not take over events still in flight here."""
        while not done.is_set():
            try:
                await self._redis.set(self.key, datetime.now(UTC).isoformat(), ex=self._ttl)
                self.at = time.monotonic()
            except (RedisError, OSError) as exc:  # the worker's loop reports Redis down; try again
                self._outage.failed(exc)
            await sleep_unless_stopped(done, self._ttl / 3)
