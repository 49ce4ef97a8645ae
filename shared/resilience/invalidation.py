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

log = logging.getLogger(__name__)


class ProductInvalidator:
    """The catalog's side: after a commit, tombstone the changed products and announce them."""

    def __init__(self, redis: Redis, keys: Keys, tombstone_seconds: float) -> None:
        self._keys = keys
        self._tombstone_ms = math.ceil(tombstone_seconds * 1000)
        self._script = load(redis, __file__, "cache_invalidate")

    async def changed(self, versions: Sequence[tuple[int, int]], *, deleted: bool = False) -> None:
        """`versions`: (product id, its version after the change). Never raises: the change
        is committed; a cache that could not be told is logged (its entries expire)."""
        if not versions:
            return
        args: list[str | int] = [
            self._tombstone_ms,
            self._keys.product_invalidations(),
            ",".join(str(pid) for pid, _ in versions),
            *(version for _, version in versions),
            *("1" if deleted else "0" for _ in versions),
        ]
        try:
            await self._script(keys=[self._keys.product(pid) for pid, _ in versions], args=args)
        except (RedisError, OSError) as exc:
            log.error("could not invalidate cached products %s: %s", [pid for pid, _ in versions], exc)
