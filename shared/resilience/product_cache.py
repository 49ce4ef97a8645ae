"""The product cache in Redis: read by the cart, invalidated by the catalog.

`product:{id}` holds msgspec JSON: the product (or null for "no such product"), when it was
fetched, until when it is fresh (CACHE_TTL, jittered ±10% so keys do not expire together) and
how long the fetch took. A whole cart is one `MGET`; only misses go to the catalog, in one batch.

- Stale-if-error: an entry outlives its freshness (the key's TTL is CACHE_STALE_SECONDS); when
  the catalog cannot be asked, an expired entry is served and reported as stale.
- Early refresh (XFetch, Vattani et al. 2015): a fresh entry is refreshed early with a
  probability that grows as its expiry nears and with how long its fetch took, so a hot key
  is refreshed by one request before it expires instead of by a burst after.
- Stampedes: concurrent misses for a product share one fetch per process (in-flight
  coalescing) and, across processes, one while a short per-product lock (`SET NX PX`) is held;
  the others poll the key until the holder has written it (or the lock lapses).
- 404s are cached for CACHE_NEGATIVE_TTL seconds, so a bad id cannot hammer the catalog.
- Invalidation (`shared.resilience.invalidation`): the catalog tombstones a changed product
  with its new version; a cart write that lost the race is refused by `cache_write.lua`, so
  once the catalog has answered a change, the old product is never served from the cache.
If Redis fails the cache steps aside: reads go to the catalog, failures are logged once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from shared.errors import Unavailable
from shared.keys import Keys
from shared.resilience.cache_entries import (
    CacheConfig,
    Fetch,
    Lookup,
    ProductData,
    _decode,
    _Entry,
    _refresh_early,
)
from shared.resilience.cache_shards import ask_epoch, masters, text, write_calls
from shared.storage.lua import load
from shared.storage.slots import grouped, run_grouped

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.02


class ProductCache:
    def __init__(self, redis: Redis, keys: Keys, config: CacheConfig) -> None:
        self._redis = redis
        self._keys = keys
        self._config = config
        self._write = load(redis, __file__, "cache_write")
        self._release = load(redis, __file__, "release_locks")
        self._inflight: dict[int, asyncio.Task[dict[int, ProductData | None]]] = {}
        self._redis_down = False
        # For /metrics, tests and benchmarks: products served from the cache, products not
        # (missing, expired or refreshed early), products served stale because the catalog
        # could not answer, batches asked of the catalog, Redis calls that failed, fresh entries
        # refreshed early (XFetch), and fetched products the cache refused to store (a newer
        # version or a tombstone held the key, or Redis lost its data meanwhile).
        self.hits = self.misses = self.stale_served = self.catalog_fetches = self.redis_failures = 0
        self.early_refreshes = self.writes_refused = 0
        # Reads of entries from Redis, and the requests they sent: one per read on a single
        # Redis; on a cluster one per master holding some of a read's products (in parallel).
        self.reads = self.read_requests = 0

    async def get_many(self, ids: Iterable[int], fetch: Fetch) -> Lookup:
        wanted = sorted(set(ids))
        lookup = Lookup()
        if not wanted:
            return lookup
        entries = await self._read(wanted)
        now = time.time()
        need, expired = [], {}
        seen: dict[int, float] = {}  # when each needed entry we read was fetched (0: none)
        for product_id, entry in zip(wanted, entries, strict=True):
            if entry is None or entry.min_version is not None:
                need.append(product_id)
                continue
            seen[product_id] = entry.fetched_at
            if now < entry.fresh_until and not _refresh_early(entry, now):
                if entry.product is not None:
                    lookup.found[product_id] = entry.product
                continue
            need.append(product_id)
            self.early_refreshes += now < entry.fresh_until
            if entry.product is not None:
                expired[product_id] = (entry.product, now < entry.fresh_until)
        self.hits += len(wanted) - len(need)
        self.misses += len(need)
        if not need:
            return lookup
        try:
            loaded = await self._load(need, fetch, seen)
        except Unavailable:
            for product_id in need:
                if product_id in expired:
                    product, still_fresh = expired[product_id]
                    lookup.found[product_id] = product
                    if not still_fresh:  # an early refresh that failed serves a fresh entry
                        lookup.stale.add(product_id)
                else:
                    lookup.unknown.add(product_id)
            self.stale_served += len(lookup.stale)
            return lookup
        lookup.found.update({pid: product for pid, product in loaded.items() if product is not None})
        return lookup

    async def refresh(self, ids: Iterable[int], fetch: Fetch) -> dict[int, ProductData]:
        """Current data straight from the source (for writes: a stock check must not trust a
        five-minute-old entry), written to the cache on the way. Raises Unavailable."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        epochs = await self._epochs(wanted)
        started = time.monotonic()
        self.catalog_fetches += 1
        fetched = await fetch(wanted)
        await self._store(wanted, fetched, time.monotonic() - started, epochs)
        return fetched

    async def _read(self, ids: Sequence[int]) -> list[_Entry | None]:
        try:
            keys = [self._keys.product(pid) for pid in ids]
            self.reads += 1
            if isinstance(self._redis, RedisCluster):
                # One MGET per slot in one pipeline: a request per master, in parallel. (A single
                # Redis answers one MGET over any keys, whatever their names.)
                blobs = await self._redis.mget_nonatomic(keys)
                self.read_requests += len(masters(self._redis, keys))
            else:
                blobs = await self._redis.mget(keys)
                self.read_requests += 1
        except (RedisError, OSError) as exc:
            self._redis_failed("read", exc)
            return [None] * len(ids)
        self._redis_back()
        return [_decode(blob) for blob in blobs]

    async def _load(
        self, ids: list[int], fetch: Fetch, seen: dict[int, float]
    ) -> dict[int, ProductData | None]:
        """Fetch `ids`, sharing fetches already in flight in this process."""
        mine = [pid for pid in ids if pid not in self._inflight]
        if mine:
            task = asyncio.create_task(self._fetch_and_store(mine, fetch, seen))
            # Retrieve the outcome even if every waiter is cancelled (no "never retrieved").
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            for pid in mine:
                self._inflight[pid] = task
            task.add_done_callback(lambda t: [self._inflight.pop(pid, None) for pid in mine])
        tasks: list[asyncio.Task[dict[int, ProductData | None]]] = []  # each shared fetch once
        for pid in ids:
            shared = self._inflight.get(pid)
            if shared is not None and shared not in tasks:
                tasks.append(shared)
        result: dict[int, ProductData | None] = {}
        for task in tasks:
            # Shielded: one waiter going away must not cancel the fetch the others share.
            result.update(await asyncio.shield(task))
        return {pid: result.get(pid) for pid in ids}

    async def _fetch_and_store(
        self, ids: list[int], fetch: Fetch, seen: dict[int, float]
    ) -> dict[int, ProductData | None]:
        token = uuid.uuid4().hex
        locked, epochs = await self._lock(ids, token)
        try:
            result = await self._wait_for_holders([pid for pid in ids if pid not in locked])
            # Double-checked: another process may have stored a product and released its lock
            # between our read and our lock; an entry fetched since we read needs no fetch. Only
            # since: the entry an early refresh was chosen for is fresh too, and must be fetched.
            result.update(await self._cached([pid for pid in ids if pid in locked], seen))
            todo = [pid for pid in ids if pid not in result]
            if todo:
                started = time.monotonic()
                self.catalog_fetches += 1
                fetched = await fetch(todo)
                await self._store(todo, fetched, time.monotonic() - started, epochs)
                result.update({pid: fetched.get(pid) for pid in todo})
            return result
        finally:
            await self._unlock(locked, token)

    async def _lock(self, ids: list[int], token: str) -> tuple[set[int], dict[int, str]]:
        """The ids this process may fetch: those whose lock it took (all, if Redis fails); and
        the epochs of their cache shards, read before the fetch, in the same round trip."""
        shards = sorted({self._keys.cache_shard(pid) for pid in ids})
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for pid in ids:
                    pipe.set(
                        self._keys.product_lock(pid), token, nx=True, px=int(self._config.lock_seconds * 1000)
                    )
                for shard in shards:
                    ask_epoch(pipe, self._keys.cache_epoch(shard))
                replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._redis_failed("lock", exc)
            return set(ids), {}
        taken, epochs = replies[: len(ids)], replies[len(ids) + 1 :: 2]
        locked = {pid for pid, ok in zip(ids, taken, strict=True) if ok}
        return locked, {shard: text(epoch) for shard, epoch in zip(shards, epochs, strict=True)}

    async def _epochs(self, ids: Iterable[int]) -> dict[int, str]:
        """The epochs of the cache shards of `ids` (made if Redis has none), read before a fetch:
        a write carries them, and `cache_write.lua` refuses it if Redis lost its data meanwhile
        (see shared.keys). None if Redis cannot say."""
        shards = sorted({self._keys.cache_shard(pid) for pid in ids})
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for shard in shards:
                    ask_epoch(pipe, self._keys.cache_epoch(shard))
                replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._redis_failed("read", exc)
            return {}
        return {shard: text(epoch) for shard, epoch in zip(shards, replies[1::2], strict=True)}

    async def _unlock(self, ids: Iterable[int], token: str) -> None:
        by_shard = grouped(ids, self._keys.cache_shard)
        if not by_shard:
            return
        calls = [([self._keys.product_lock(pid) for pid in shard], [token]) for shard in by_shard.values()]
        try:
            await run_grouped(self._redis, self._release, calls)
        except (RedisError, OSError) as exc:
            self._redis_failed("unlock", exc)  # the locks lapse on their own

    async def _cached(self, ids: list[int], seen: dict[int, float]) -> dict[int, ProductData | None]:
        """The ids the cache holds a fresh answer for (a product, or "no such product") fetched
        after `seen` says the entry we read was."""
        if not ids:
            return {}
        now = time.time()
        return {
            pid: entry.product
            for pid, entry in zip(ids, await self._read(ids), strict=True)
            if entry is not None
            and entry.min_version is None
            and now < entry.fresh_until
            and entry.fetched_at > seen.get(pid, 0.0)
        }

    async def _wait_for_holders(self, ids: list[int]) -> dict[int, ProductData | None]:
        """Another process holds these ids' locks and is fetching them: wait (polling, up to
        the lock's lifetime) for its results in the cache; what never comes, we fetch."""
        found: dict[int, ProductData | None] = {}
        deadline = time.monotonic() + self._config.lock_seconds
        while ids and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
            for pid, entry in zip(ids, await self._read(ids), strict=True):
                if entry is not None and entry.min_version is None:
                    found[pid] = entry.product
            ids = [pid for pid in ids if pid not in found]
        return found

    async def _store(
        self, ids: list[int], fetched: dict[int, ProductData], delta: float, epochs: dict[int, str]
    ) -> None:
        """Write what was fetched, one script call per cache shard (one in all on a single
        Redis), each carrying its shard's epoch; a shard whose epoch Redis could not say before
        the fetch is not written."""
        calls = write_calls(self._keys, self._config, ids, fetched, delta, epochs)
        if not calls:
            return
        try:
            written = sum(int(n) for n in await run_grouped(self._redis, self._write, calls))
        except (RedisError, OSError) as exc:
            self._redis_failed("write", exc)
            return
        self.writes_refused += sum(len(keys) - 1 for keys, _ in calls) - written

    def _redis_failed(self, action: str, exc: BaseException) -> None:
        self.redis_failures += 1
        if not self._redis_down:
            log.error("product cache cannot %s Redis (%s); reading the catalog directly", action, exc)
            self._redis_down = True

    def _redis_back(self) -> None:
        if self._redis_down:
            log.warning("product cache reaches Redis again")
            self._redis_down = False
