"""The Redis toolkit on a Redis Cluster: the limiter, the product cache and its invalidation, with
keys spread over the three masters (shared.keys), each script's keys in one slot."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from app_cart.worker.run import main as worker_main
from devtools.redis_cluster import RedisCluster
from devtools.servers import free_port, throwaway_redis
from shared.config import Settings, load_settings
from shared.keys import CACHE_SHARDS, Keys
from shared.ratelimit.limiter import RateLimiter
from shared.ratelimit.spec import Limit
from shared.resilience.cache_entries import CacheConfig, ProductData
from shared.resilience.invalidation import ProductInvalidator
from shared.resilience.product_cache import ProductCache
from shared.storage.cluster_client import ClusterConnection
from shared.storage.redis_conn import RedisModeMismatch, check_mode, create_redis


@pytest.fixture
async def clients(redis_cluster: RedisCluster) -> AsyncIterator[list[ClusterClient]]:
    """Two cluster clients, as two processes have."""
    made = [ClusterClient.from_url(redis_cluster.url) for _ in range(2)]
    yield made
    for client in made:
        await client.aclose()


@pytest.fixture
def keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:8]}", cluster=True)


def product(pid: int, version: int = 1) -> ProductData:
    return ProductData(
        id=pid,
        name=f"P{pid}",
        price=Decimal("1.00"),
        stock=5,
        is_active=True,
        category_name=None,
        version=version,
    )


class Catalog:
    def __init__(self, ids: range) -> None:
        self.products = {pid: product(pid) for pid in ids}
        self.fetched: list[list[int]] = []

    async def fetch(self, ids: list[int]) -> dict[int, ProductData]:
        self.fetched.append(ids)
        return {pid: self.products[pid] for pid in ids if pid in self.products}


async def test_the_check_catches_a_script_given_keys_of_two_slots(clients, cross_slot):
    script = clients[0].register_script("return 1")
    assert key_slot(b"a") != key_slot(b"b")
    with pytest.raises(RedisError):
        await script(keys=["a", "b"])
    assert cross_slot and cross_slot[0][0] == "EVALSHA"
    cross_slot.clear()  # caught, as it should be: this test's teardown must not fail on it


def test_shards_and_partitions_spread_over_equal_shares_of_the_slots():
    keys = Keys("storefront", cluster=True, partitions=3)
    shares = [key_slot(keys.catalog_events(i).encode()) * 3 // 16384 for i in range(3)]
    assert shares == [0, 1, 2]
    slots = [key_slot(keys.cache_epoch(shard).encode()) for shard in range(CACHE_SHARDS)]
    assert [slot * CACHE_SHARDS // 16384 for slot in slots] == list(range(CACHE_SHARDS))
    for pid in (1, 17, 42):  # a product, its lock and its shard's epoch: one slot
        shard = keys.cache_shard(pid)
        together = {keys.product(pid), keys.product_lock(pid), keys.cache_epoch(shard)}
        assert len({key_slot(key.encode()) for key in together}) == 1
    stream = {keys.catalog_events(1), keys.stream_epoch(1), keys.event_errors(1), keys.dead_event("1-1", 1)}
    assert len({key_slot(key.encode()) for key in stream}) == 1


def test_a_single_redis_keeps_its_key_names():
    keys = Keys("storefront")
    assert (keys.product(7), keys.product_lock(7), keys.cache_epoch(3)) == (
        "storefront:product:7",
        "storefront:product:7:lock",
        "storefront:product-cache:epoch",
    )
    assert (keys.catalog_events(), keys.event_errors(), keys.dead_event("1-0"), keys.stream_epoch()) == (
        "storefront:catalog-events",
        "storefront:catalog-events:errors",
        "storefront:catalog-events:dead:1-0",
        "storefront:catalog-events:epoch",
    )


async def test_two_limiters_share_a_limit_exactly_across_masters(clients, keys):
    limiters = [RateLimiter(client, keys) for client in clients]
    limits = [Limit(5, 60), Limit(50, 3600)]
    # 40 subjects, so that batches span slots on every master; 8 requests each, from both.
    subjects = [f"user:{n}" for n in range(40)]
    checks = [limiters[n % 2].check(subject, "reads", limits) for subject in subjects for n in range(8)]
    decisions = await asyncio.gather(*checks)
    admitted: dict[str, int] = {}
    for (subject, _), decision in zip(((s, n) for s in subjects for n in range(8)), decisions, strict=True):
        admitted[subject] = admitted.get(subject, 0) + decision.admitted
    assert set(admitted.values()) == {5}
    assert sum(limiter.redis_failures for limiter in limiters) == 0


async def test_a_cart_read_asks_each_master_once(clients, keys, redis_cluster):
    catalog = Catalog(range(1, 25))
    cache = ProductCache(clients[0], keys, CacheConfig())
    wanted = list(range(1, 25))  # every shard, so every master
    first = await cache.get_many(wanted, catalog.fetch)
    assert set(first.found) == set(wanted) and catalog.fetched == [wanted]
    reads, requests = cache.reads, cache.read_requests
    again = await cache.get_many(wanted, catalog.fetch)
    assert set(again.found) == set(wanted) and len(catalog.fetched) == 1  # all from the cache
    assert cache.reads - reads == 1
    assert cache.read_requests - requests == len(redis_cluster.masters()) == 3
    assert cache.redis_failures == 0 and cache.writes_refused == 0


async def test_a_tombstone_refuses_an_older_write_on_its_own_master(clients, keys):
    catalog = Catalog(range(1, 9))
    cache = ProductCache(clients[0], keys, CacheConfig())
    await cache.get_many(range(1, 9), catalog.fetch)
    await ProductInvalidator(clients[1], keys, 60).changed([(pid, 2) for pid in range(1, 9)])
    # A reader that fetched version 1 before the change cannot put it back.
    await cache.refresh(range(1, 9), catalog.fetch)
    assert cache.writes_refused == 8
    catalog.products = {pid: product(pid, version=2) for pid in range(1, 9)}
    found = (await cache.get_many(range(1, 9), catalog.fetch)).found
    assert {p.version for p in found.values()} == {2}


async def test_every_node_hears_every_invalidation(clients, keys, redis_cluster):
    """PUBLISH on a cluster reaches subscribers on every node, masters and replicas: a cart
    process may subscribe through whichever node it reaches."""
    listeners = [Redis(port=port) for port in redis_cluster.ports]
    subscriptions = [client.pubsub() for client in listeners]
    try:
        for subscription in subscriptions:
            await subscription.subscribe(keys.product_invalidations())
            await subscription.get_message(timeout=1)  # the confirmation
        changed = [(pid, 2) for pid in range(1, 2 * CACHE_SHARDS + 1)]  # every shard: every master
        await ProductInvalidator(clients[0], keys, 60).changed(changed)
        for subscription in subscriptions:
            heard: set[int] = set()
            while len(heard) < len(changed):
                message = await subscription.get_message(ignore_subscribe_messages=True, timeout=2)
                assert message is not None, f"heard {sorted(heard)} only"
                heard |= {int(pid) for pid in message["data"].split(b",")}
            assert heard == {pid for pid, _ in changed}
    finally:
        for subscription, client in zip(subscriptions, listeners, strict=True):
            await subscription.aclose()
            await client.aclose()


async def test_the_services_cluster_client_reports_a_torn_down_write_as_a_connection_error(redis_cluster):
    """redis-py issue #4287: a write on a connection whose transport was torn down under it
    raised an AttributeError from asyncio's transport, which no fallback catches."""
    settings = load_settings(
        Settings, {"ENV": "test", "REDIS_URL": redis_cluster.url, "REDIS_CLUSTER": "true"}
    )
    client = create_redis(settings)
    try:
        await client.ping()
        nodes = client.get_nodes()  # type: ignore[attr-defined]
        assert nodes and all(node.connection_class is ClusterConnection for node in nodes)
        connection = nodes[0].acquire_connection()
        await connection.connect()

        class TornDown:
            def writelines(self, data: object) -> None:
                raise AttributeError("'NoneType' object has no attribute '_add_writer'")

        real, connection._writer = connection._writer, TornDown()
        with pytest.raises(RedisConnectionError, match="closed under a write"):
            await connection.send_packed_command(b"PING\r\n", check_health=False)
        assert not connection.is_connected
        real.close()  # the socket the stand-in hid from the disconnect
        await real.wait_closed()
    finally:
        await client.aclose()


async def test_a_process_started_while_its_node_is_down_finds_the_cluster_through_another(redis_cluster):
    dead = f"redis://127.0.0.1:{free_port()}/0"  # no server there
    alone = create_redis(load_settings(Settings, {"ENV": "test", "REDIS_URL": dead, "REDIS_CLUSTER": "true"}))
    try:
        # No node to discover it from: Redis is unreachable, a ConnectionError every fallback
        # handles (redis-py raises RedisClusterException, which is no RedisError).
        with pytest.raises(RedisConnectionError):
            await alone.ping()
    finally:
        await alone.aclose()
    others = ",".join(f"127.0.0.1:{port}" for port in redis_cluster.ports)
    env = {"ENV": "test", "REDIS_URL": dead, "REDIS_CLUSTER": "true", "REDIS_CLUSTER_NODES": others}
    helped = create_redis(load_settings(Settings, env))
    try:
        assert await helped.set("t:found", "1") and await helped.get("t:found") == b"1"
    finally:
        await helped.aclose()


async def test_a_process_refuses_a_redis_of_the_other_mode_and_waits_out_one_that_is_down(redis_cluster):
    def settings(url: str, cluster: bool) -> Settings:
        env = {"ENV": "test", "REDIS_URL": url, "REDIS_CLUSTER": str(cluster).lower()}
        return load_settings(Settings, env)

    with throwaway_redis() as single:  # a single server of this test's own, beside the cluster
        with pytest.raises(RedisModeMismatch, match="names a single Redis: set REDIS_CLUSTER=false"):
            await check_mode(settings(single.url, cluster=True))
        with pytest.raises(RedisModeMismatch, match="names a Redis Cluster node: set REDIS_CLUSTER=true"):
            await check_mode(settings(redis_cluster.url, cluster=False))
        await check_mode(settings(single.url, cluster=False))
        await check_mode(settings(redis_cluster.url, cluster=True))
    await check_mode(settings(f"redis://127.0.0.1:{free_port()}/0", cluster=True))  # down: an outage


def test_a_worker_of_the_other_mode_stops_with_the_setting_to_fix(redis_cluster, monkeypatch, capsys):
    monkeypatch.setenv("ENV", "test")
    monkeypatch.setenv("REDIS_URL", redis_cluster.url)
    monkeypatch.setenv("REDIS_CLUSTER", "false")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    assert worker_main(["--burst"]) == 2
    assert "set REDIS_CLUSTER=true" in capsys.readouterr().err
