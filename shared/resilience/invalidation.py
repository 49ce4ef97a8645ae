"""The catalog's side of the product cache: after a commit, tombstone the changed products and
announce them on `product-invalidations` (`cache_invalidate.lua`, one call per change).

A tombstone carries the product's new version, so a cart write racing the change (it fetched
the old product just before the commit) is refused by `cache_write.lua`: once the catalog has
answered a change, the old product is never served from the cache.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.keys import Keys
from shared.storage.lua import load
from shared.storage.slots import grouped, run_grouped

log = logging.getLogger(__name__)


class ProductInvalidator:
    """The catalog's side: after a commit, tombstone the changed products and announce them."""

    def __init__(self, redis: Redis, keys: Keys, tombstone_seconds: float) -> None:
        self._redis = redis
        self._keys = keys
        self._tombstone_ms = math.ceil(tombstone_seconds * 1000)
        self._script = load(redis, __file__, "cache_invalidate")

    async def changed(self, versions: Sequence[tuple[int, int]], *, deleted: bool = False) -> None:
        """`versions`: (product id, its version after the change). Never raises: the change
        is committed; a cache that could not be told is logged (its entries expire)."""
        if not versions:
            return
        # One call per cache shard: on a cluster a script's keys must share a slot (one call in
        # all on a single Redis). Each call announces its own ids: PUBLISH, not SPUBLISH, as the
        # channel cannot be in every shard's slot, and a cluster delivers a PUBLISH from any
        # node to subscribers on every node (see shared.keys).
        calls = []
        for members in grouped(versions, lambda change: self._keys.cache_shard(change[0])).values():
            args: list[str | int] = [
                self._tombstone_ms,
                self._keys.product_invalidations(),
                ",".join(str(pid) for pid, _ in members),
                *(version for _, version in members),
                *("1" if deleted else "0" for _ in members),
            ]
            calls.append(([self._keys.product(pid) for pid, _ in members], args))
        try:
            await run_grouped(self._redis, self._script, calls)
        except (RedisError, OSError) as exc:
            log.error("could not invalidate cached products %s: %s", [pid for pid, _ in versions], exc)
