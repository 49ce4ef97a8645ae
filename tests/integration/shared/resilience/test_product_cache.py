"""The product cache on a real Redis. Two ProductCache objects, each with its own Redis client,
stand for two cart processes (all they share is Redis, as processes do)."""

import asyncio
import contextlib
import uuid
from decimal import Decimal

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from devtools.servers import throwaway_redis
from shared.errors import Unavailable
from shared.keys import Keys
from shared.resilience.invalidation import ProductInvalidator
from shared.resilience.product_cache import (
    CacheConfig,
    ProductCache,
    ProductData,
    _Entry,
    _refresh_early,
)
from shared.storage.slots import grouped
from tests.support.redis_mode import client


def product(product_id: int, version: int = 1, price: str = "9.99") -> ProductData:
    return ProductData(
        id=product_id, name=f"P{product_id}", price=Decimal(price), stock=5, is_active=True,
        category_name=None, version=version,
    )  # fmt: skip


class Catalog:
    """A stand-in for the catalog's batch endpoint: counts calls, can be slow, can fail."""

    def __init__(self, products: dict[int, ProductData], delay: float = 0.0) -> None:
        self.products = products
        self.delay = delay
        self.calls: list[list[int]] = []
        self.down = False
        self.started = asyncio.Event()

    async def fetch(self, ids: list[int]) -> dict[int, ProductData]:
        self.calls.append(ids)
        # What the catalog had when the request reached it, answered after the delay.
        answer = {pid: self.products[pid] for pid in ids if pid in self.products}
        self.started.set()
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow downstream: the overlap is what is tested
        if self.down:
            raise Unavailable("catalog down")
        return answer


@pytest.fixture
async def redis_clients(redis_server):
    clients = [client(redis_server.url) for _ in range(3)]
    yield clients
    for each in clients:
        await each.aclose()


def cache(client, keys, **config) -> ProductCache:
    return ProductCache(client, keys, CacheConfig(**config))


async def test_a_warm_cart_is_one_mget_and_no_catalog_call(redis_clients, keys):
    catalog = Catalog({i: product(i) for i in range(1, 21)})
    reader = cache(redis_clients[0], keys)
    first = await reader.get_many(range(1, 21), catalog.fetch)
    assert sorted(first.found) == list(range(1, 21)) and catalog.calls == [list(range(1, 21))]
    second = await reader.get_many(range(1, 21), catalog.fetch)
    assert second.found == first.found and len(catalog.calls) == 1
    assert not second.stale and not second.unknown


async def test_only_misses_are_fetched(redis_clients, keys):
    catalog = Catalog({i: product(i) for i in range(1, 6)})
    reader = cache(redis_clients[0], keys)
    await reader.get_many([1, 2], catalog.fetch)
    await reader.get_many([1, 2, 3, 4], catalog.fetch)
    assert catalog.calls == [[1, 2], [3, 4]]


async def test_a_missing_product_is_cached_briefly(redis_clients, keys):
    catalog = Catalog({})
    reader = cache(redis_clients[0], keys, negative_ttl_seconds=30)
    for _ in range(5):
        assert (await reader.get_many([404], catalog.fetch)).found == {}
    assert len(catalog.calls) == 1
    assert 0 < await redis_clients[0].pttl(keys.product(404)) <= 30_000


async def test_concurrent_misses_across_two_processes_make_one_catalog_call(redis_clients, keys):
    catalog = Catalog({7: product(7)}, delay=0.2)
    first, second = cache(redis_clients[0], keys), cache(redis_clients[1], keys)
    lookups = await asyncio.gather(
        *(first.get_many([7], catalog.fetch) for _ in range(100)),
        *(second.get_many([7], catalog.fetch) for _ in range(100)),
    )
    assert all(lookup.found == {7: product(7)} for lookup in lookups)
    assert len(catalog.calls) == 1  # one per process would be 2; the Redis lock makes it 1


async def test_a_fetch_that_lost_the_race_cannot_put_the_old_product_back(redis_clients, keys):
    # A cart fetches version 1; before its answer is written, the catalog commits version 2
    # and invalidates. The late write must be refused, and the next read must see version 2.
    catalog = Catalog({5: product(5, version=1, price="1.00")}, delay=0.3)
    reader = cache(redis_clients[0], keys)
    invalidator = ProductInvalidator(redis_clients[1], keys, tombstone_seconds=60)
    slow_read = asyncio.create_task(reader.get_many([5], catalog.fetch))
    await catalog.started.wait()  # the fetch is in flight, holding version 1
    catalog.products[5] = product(5, version=2, price="2.00")
    await invalidator.changed([(5, 2)])
    assert (await slow_read).found[5].version == 1  # that request saw what it fetched...
    fresh = await reader.get_many([5], catalog.fetch)
    assert fresh.found[5].price == Decimal("2.00")  # ...but the cache did not keep it
    assert len(catalog.calls) == 2


async def test_invalidation_keeps_a_copy_already_as_new(redis_clients, keys):
    catalog = Catalog({5: product(5, version=3)})
    reader = cache(redis_clients[0], keys)
    await reader.get_many([5], catalog.fetch)
    await ProductInvalidator(redis_clients[1], keys, 60).changed([(5, 3)])
    await reader.get_many([5], catalog.fetch)
    assert len(catalog.calls) == 1


async def test_a_deleted_product_reads_as_missing_and_a_created_one_as_present(redis_clients, keys):
    catalog = Catalog({8: product(8, version=4)})
    reader = cache(redis_clients[0], keys)
    invalidator = ProductInvalidator(redis_clients[1], keys, 60)
    assert 8 in (await reader.get_many([8], catalog.fetch)).found
    del catalog.products[8]
    await invalidator.changed([(8, 4)], deleted=True)
    assert (await reader.get_many([8], catalog.fetch)).found == {}
    # A 404 for a product then created: the creation's tombstone evicts the cached 404.
    assert (await reader.get_many([9], catalog.fetch)).found == {}
    catalog.products[9] = product(9, version=1)
    await invalidator.changed([(9, 1)])
    assert 9 in (await reader.get_many([9], catalog.fetch)).found


async def test_invalidations_are_published(redis_clients, keys):
    await redis_clients[2].initialize()  # a cluster client's pub/sub needs the slots it learns here
    pubsub = redis_clients[2].pubsub()
    await pubsub.subscribe(keys.product_invalidations())
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    await ProductInvalidator(redis_clients[1], keys, 60).changed([(1, 2), (3, 4)])
    # A message per cache shard, naming its ids: one on a single Redis ("1,3"); on a cluster,
    # where 1 and 3 are in different shards, one each, from calls sent in parallel.
    expected = [",".join(map(str, ids)).encode() for ids in grouped([1, 3], keys.cache_shard).values()]
    received = []
    for _ in expected:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert message is not None, received
        received.append(message["data"])
    assert sorted(received) == sorted(expected) and len(expected) == (2 if keys.cluster else 1)
    await pubsub.aclose()


async def test_stale_if_error(redis_clients, keys):
    catalog = Catalog({6: product(6)})
    reader = cache(redis_clients[0], keys, ttl_seconds=0.05)
    await reader.get_many([6, 7], catalog.fetch)
    await asyncio.sleep(0.06)  # past the 0.05 s freshness: the expiry is the behaviour tested
    catalog.down = True
    lookup = await reader.get_many([6, 8], catalog.fetch)
    assert lookup.found == {6: product(6)} and lookup.stale == {6}
    assert lookup.unknown == {8}  # never cached: nothing to serve


def test_xfetch_refreshes_early_more_often_as_expiry_nears():
    entry = _Entry(product=product(1), fetched_at=0, fresh_until=100.0, delta=1.0)
    far = sum(_refresh_early(entry, now=50.0) for _ in range(2000))
    near = sum(_refresh_early(entry, now=99.0) for _ in range(2000))
    assert far == 0  # 50 s before expiry with a 1 s fetch: e^-50, never in practice
    assert 600 < near < 880  # 1 s before, with a 1 s fetch: probability e^-1, about 37%
    assert _refresh_early(entry, now=100.0)
    instant = _Entry(product=product(1), fetched_at=0, fresh_until=100.0, delta=0.0)
    assert not _refresh_early(instant, now=99.999)
    assert _refresh_early(instant, now=100.0)  # at expiry, always: the boundary is inclusive


async def test_redis_down_reads_the_catalog_directly():
    with throwaway_redis() as server:
        client = Redis.from_url(server.url, socket_connect_timeout=0.2, socket_timeout=0.2)
        reader = ProductCache(client, Keys("t"), CacheConfig())
        catalog = Catalog({1: product(1)})
        server.stop()
        try:
            assert (await reader.get_many([1], catalog.fetch)).found == {1: product(1)}
            assert (await reader.get_many([1], catalog.fetch)).found == {1: product(1)}
            assert len(catalog.calls) == 2
        finally:
            await client.aclose()


@pytest.mark.parametrize("path", ["read", "write"])
async def test_a_fetch_that_raced_with_a_redis_data_loss_writes_nothing(path):
    """The catalog changes a product while a cart's fetch of it is on its way, and Redis then
    loses its data, tombstone and all: the fetch's old answer must not enter the cache (a read
    would serve it until it expired, after the catalog had answered the change)."""
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")  # a single server's, as the one this test starts
    with throwaway_redis() as server:
        async with Redis.from_url(server.url) as client:
            reader = cache(client, keys)
            invalidator = ProductInvalidator(client, keys, tombstone_seconds=60)
            catalog = Catalog({7: product(7, version=1)})

            async def fetch(ids: list[int]) -> dict[int, ProductData]:
                old = await catalog.fetch(ids)  # the catalog answered version 1 ...
                await invalidator.changed([(7, 2)])  # ... then committed version 2,
                server.lose_data()  # and Redis lost everything, the tombstone included
                with contextlib.suppress(RedisConnectionError):  # the client's connection died:
                    await client.ping()  # the cache's write must find Redis answering again
                return old

            if path == "read":
                await reader.get_many([7], fetch)
            else:
                await reader.refresh([7], fetch)
            assert await client.get(keys.product(7)) is None
