"""The product cache on a real Redis, the paths test_product_cache.py leaves alone: its
counters, what it writes (entry fields, TTL jitter, lock and tombstone lifetimes), `refresh`,
and the double-checked read after the lock (each Redis call failing on its own:
test_product_cache_failures.py). `client` and `keys`: conftest.py."""

import asyncio
import gc
import logging
import time
import types

import msgspec
import pytest

from shared.resilience import cache_entries, cache_shards
from shared.resilience.invalidation import ProductInvalidator
from shared.resilience.product_cache import CacheConfig, ProductCache, _Entry
from tests.integration.shared.resilience.test_product_cache import Catalog, product
from tests.support import redis_mode
from tests.support.waits import until

CACHE_LOG = "shared.resilience.product_cache"


def cache(client, keys, **config) -> ProductCache:
    return ProductCache(client, keys, CacheConfig(**config))


async def put(client, keys, product_id: int, *, fresh_for: float, delta: float = 0.0) -> None:
    """An entry as a cart wrote it, `fresh_for` seconds from now (negative: expired)."""
    now = time.time()
    entry = _Entry(product=product(product_id), fetched_at=now, fresh_until=now + fresh_for, delta=delta)
    await client.set(keys.product(product_id), msgspec.json.encode(entry), px=600_000)


async def stored(client, keys, product_id: int) -> _Entry | None:
    return cache_entries._decode(await client.get(keys.product(product_id)))


def counters(reader: ProductCache) -> dict[str, int]:
    names = ("hits", "misses", "stale_served", "catalog_fetches", "redis_failures", "early_refreshes")
    return {name: getattr(reader, name) for name in (*names, "writes_refused")}


def errors_and_warnings(caplog) -> tuple[list[str], list[str]]:
    records = [r for r in caplog.records if r.name == CACHE_LOG]
    return (
        [r.getMessage() for r in records if r.levelno == logging.ERROR],
        [r.getMessage() for r in records if r.levelno == logging.WARNING],
    )


async def test_counters_add_up_over_reads(client, keys):
    reader = cache(client, keys)
    assert set(counters(reader).values()) == {0}
    catalog = Catalog({i: product(i) for i in range(1, 5)})
    await reader.get_many([1, 2], catalog.fetch)  # two misses, one batch, both written
    await reader.get_many([1, 2, 3], catalog.fetch)  # two hits, one miss
    await reader.get_many([1, 2, 3, 4], catalog.fetch)  # three hits, one miss
    assert counters(reader) == {
        "hits": 5, "misses": 4, "stale_served": 0, "catalog_fetches": 3, "redis_failures": 0,
        "early_refreshes": 0, "writes_refused": 0,
    }  # fmt: skip
    # Two reads of Redis per call, each with a miss: the first, and the lock's double check of
    # the misses. A request per read on one Redis; on a cluster, one per master holding some.
    assert reader.reads == 6
    if redis_mode.CLUSTER:
        assert 6 <= reader.read_requests <= 6 * 3
    else:
        assert reader.read_requests == 6


async def test_expired_entries_served_stale_are_counted(client, keys):
    reader = cache(client, keys)
    catalog = Catalog({})
    catalog.down = True
    await put(client, keys, 1, fresh_for=-1)
    await put(client, keys, 2, fresh_for=-1)
    for _ in range(2):
        lookup = await reader.get_many([1, 2], catalog.fetch)
        assert lookup.stale == {1, 2} and lookup.found == {1: product(1), 2: product(2)}
    assert reader.stale_served == 4 and reader.misses == 4 and reader.hits == 0


async def test_early_refreshes_are_counted(client, keys, monkeypatch):
    # -log(1 - 0.5) * 100 s of fetch time reaches well past 10 s of freshness: refresh early.
    monkeypatch.setattr(cache_entries, "random", types.SimpleNamespace(random=lambda: 0.5))
    reader = cache(client, keys)
    await put(client, keys, 1, fresh_for=10, delta=100)
    await put(client, keys, 2, fresh_for=10, delta=100)
    await put(client, keys, 3, fresh_for=10, delta=0)  # an instant fetch: never early
    catalog = Catalog({i: product(i) for i in range(1, 4)})
    lookup = await reader.get_many([1, 2, 3], catalog.fetch)
    assert lookup.found == {i: product(i) for i in range(1, 4)} and not lookup.stale
    assert (reader.early_refreshes, reader.misses, reader.hits) == (2, 2, 1)


async def test_an_early_refresh_asks_the_catalog_and_stores_what_it_answers(client, keys, monkeypatch):
    """The point of refreshing early: the catalog is asked, and its newer answer served and
    stored, although the entry read was still fresh (the lock's double check must not take
    that same entry for one another process just stored)."""
    monkeypatch.setattr(cache_entries, "random", types.SimpleNamespace(random=lambda: 0.5))
    reader = cache(client, keys)
    await put(client, keys, 1, fresh_for=10, delta=100)  # version 1, chosen for early refresh
    catalog = Catalog({1: product(1, version=2)})
    lookup = await reader.get_many([1], catalog.fetch)
    assert catalog.calls == [[1]]
    assert lookup.found == {1: product(1, version=2)}
    assert (await stored(client, keys, 1)).product == product(1, version=2)


async def test_a_write_the_cache_refuses_is_counted_and_a_404_never_replaces_a_product(client, keys):
    reader = cache(client, keys)
    await reader.get_many([5], Catalog({5: product(5, version=1)}).fetch)
    gone = Catalog({})
    for _ in range(2):
        assert await reader.refresh([5], gone.fetch) == {}
    assert reader.writes_refused == 2
    assert (await stored(client, keys, 5)).product == product(5, version=1)


async def test_refresh_asks_the_catalog_and_stores_the_answer(client, keys):
    reader = cache(client, keys)
    catalog = Catalog({1: product(1), 2: product(2)}, delay=0.01)
    assert await reader.refresh([], catalog.fetch) == {} and catalog.calls == []
    before = time.time()
    assert await reader.refresh([2, 1, 2], catalog.fetch) == {1: product(1), 2: product(2)}
    assert catalog.calls == [[1, 2]] and reader.catalog_fetches == 1
    entry = await stored(client, keys, 1)
    assert entry is not None and entry.product == product(1) and entry.min_version is None
    assert before <= entry.fetched_at <= time.time()
    assert 0 < entry.delta < 5  # the fetch's duration, not a clock reading
    assert (await reader.get_many([1, 2], catalog.fetch)).found == {1: product(1), 2: product(2)}
    assert len(catalog.calls) == 1 and reader.hits == 2
    await reader.refresh([1], catalog.fetch)
    assert reader.catalog_fetches == 2 and reader.writes_refused == 0


async def test_an_entry_records_its_fetch_and_freshness_jittered_by_ten_percent(client, keys, monkeypatch):
    reader = cache(client, keys, ttl_seconds=300, stale_seconds=1000)
    catalog = Catalog({1: product(1), 2: product(2)}, delay=0.01)
    for product_id, bound in ((1, max), (2, min)):  # the jitter at either end of its range
        monkeypatch.setattr(
            cache_shards,  # where the entries are made
            "random",
            types.SimpleNamespace(uniform=lambda lo, hi, pick=bound: pick(lo, hi)),
        )
        before = time.time()
        await reader.get_many([product_id], catalog.fetch)
        entry = await stored(client, keys, product_id)
        assert before <= entry.fetched_at <= time.time() and 0 < entry.delta < 5
        fresh = entry.fresh_until - entry.fetched_at
        assert fresh == pytest.approx(330 if bound is max else 270)
        assert 990_000 < await client.pttl(keys.product(product_id)) <= 1_000_000


async def test_the_fetch_lock_lapses_on_its_own_and_is_released_after_the_fetch(client, keys):
    reader = cache(client, keys, lock_seconds=100)
    catalog = Catalog({7: product(7)}, delay=0.2)
    reading = asyncio.create_task(reader.get_many([7], catalog.fetch))
    await catalog.started.wait()
    assert 99_000 < await client.pttl(keys.product_lock(7)) <= 100_000
    assert (await reading).found == {7: product(7)}
    assert await client.exists(keys.product_lock(7)) == 0


async def test_a_tombstone_lives_as_long_as_asked(client, keys):
    await ProductInvalidator(client, keys, tombstone_seconds=60).changed([(5, 2)])
    assert 59_000 < await client.pttl(keys.product(5)) <= 60_000


async def test_a_product_stored_between_the_read_and_the_lock_is_not_fetched_again(client, keys, monkeypatch):
    """Double-checked: another process writes the product after this one's read found nothing
    and before it took the lock; what the cache then holds is used, not fetched again."""
    reader, other = cache(client, keys), cache(client, keys)
    catalog = Catalog({7: product(7)})
    first_read = reader._read

    async def read_then_another_process_stores(ids):
        monkeypatch.setattr(reader, "_read", first_read)  # only the first read races
        entries = await first_read(ids)
        await other.refresh(ids, catalog.fetch)
        return entries

    monkeypatch.setattr(reader, "_read", read_then_another_process_stores)
    assert (await reader.get_many([7], catalog.fetch)).found == {7: product(7)}
    assert catalog.calls == [[7]] and reader.catalog_fetches == 0  # the other process's fetch only


async def test_a_shared_fetch_all_its_waiters_left_has_its_failure_retrieved(client, keys):
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        reader = cache(client, keys)
        catalog = Catalog({}, delay=0.05)
        catalog.down = True
        waiter = asyncio.create_task(reader.get_many([7], catalog.fetch))
        await catalog.started.wait()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

        async def fetch_over() -> bool:
            return not reader._inflight

        await until(fetch_over, seconds=5, poll=0.01)
        del waiter
        gc.collect()
        assert reported == []  # no "Task exception was never retrieved"
    finally:
        loop.set_exception_handler(previous)


async def test_a_client_that_decodes_responses_works_too(redis_server, keys):
    async with redis_mode.client(redis_server.url, decode_responses=True) as client:
        reader = cache(client, keys)
        catalog = Catalog({1: product(1)})
        assert (await reader.get_many([1], catalog.fetch)).found == {1: product(1)}
        assert await reader.refresh([1], catalog.fetch) == {1: product(1)}
        assert (await reader.get_many([1], catalog.fetch)).found == {1: product(1)}
        assert len(catalog.calls) == 2 and reader.redis_failures == 0
