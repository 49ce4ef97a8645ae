"""The event stream in three partitions on the cluster: a product's events in one partition in
order, the partitions on three masters, a worker consuming all of them, the totals in health, and
the partition count that cannot change under events in flight."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from databases import Database
from redis.asyncio import Redis

from app_cart.adapters.catalog_client import catalog_client
from app_cart.settings import CartSettings
from app_cart.worker.run import cart_workers
from app_product.app import open_catalog
from app_product.catalog import products
from app_product.catalog.models import ProductCreate, ProductPatch
from app_product.outbox.relay import Relay
from app_product.settings import CatalogSettings
from shared.config import load_settings
from shared.events import partitions
from shared.events.status import pipeline_status
from shared.http.versioning import ExpectedVersion
from shared.keys import CART_GROUP, Keys, keys_for
from shared.storage.migrations import SQL_ROOT, migrate
from shared.storage.postgres import create_database
from shared.storage.redis_conn import create_redis
from tests.support.env import service_env


@dataclass
class Pipeline:
    catalog: CatalogSettings
    cart: CartSettings
    redis: Redis
    db: Database

    def with_partitions(self, count: int) -> Pipeline:
        env = {"STREAM_PARTITIONS": str(count)}
        return Pipeline(
            load_settings(CatalogSettings, {**self._env(self.catalog), **env}),
            load_settings(CartSettings, {**self._env(self.cart), **env}),
            self.redis,
            self.db,
        )

    @staticmethod
    def _env(settings: Any) -> dict[str, str]:
        return {
            "ENV": "test",
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "REDIS_CLUSTER": "true",
            "REDIS_KEY_PREFIX": settings.redis_key_prefix,
            "JWT_SECRET": settings.jwt_secret,
            **({"CATALOG_URL": settings.catalog_url} if hasattr(settings, "catalog_url") else {}),
        }

    async def relay(self) -> None:
        await Relay(self.catalog, self.redis).run(asyncio.Event(), burst=True)

    async def work(self) -> int:
        client = catalog_client(self.cart, self.redis)
        try:
            workers = cart_workers(self.cart, self.db, self.redis, "w-part", client)
            await asyncio.gather(*(w.run(asyncio.Event(), burst=True) for w in workers))
            assert sum(w.failed for w in workers) == 0
            return sum(w.applied for w in workers)
        finally:
            await client.aclose()


@pytest.fixture
async def pipeline(postgres, redis_cluster) -> AsyncIterator[Pipeline]:
    catalog_db, cart_db = (postgres.url(f"pt_{uuid.uuid4().hex[:10]}") for _ in range(2))
    await migrate(catalog_db, SQL_ROOT / "catalog")
    await migrate(cart_db, SQL_ROOT / "cart")
    common = {
        "REDIS_CLUSTER": "true",
        "REDIS_KEY_PREFIX": f"p{uuid.uuid4().hex[:8]}",
        "STREAM_PARTITIONS": "3",
    }
    catalog = load_settings(CatalogSettings, service_env(catalog_db, redis_cluster.url, **common))
    cart = load_settings(
        CartSettings, service_env(cart_db, redis_cluster.url, CATALOG_URL="http://x", **common)
    )
    redis, db = create_redis(cart), create_database(cart)
    await db.connect()
    yield Pipeline(catalog, cart, redis, db)
    await db.disconnect()
    await redis.aclose()


async def changed_products(pipeline: Pipeline, count: int) -> list[int]:
    """`count` products, each created then repriced twice: three events apiece."""
    ids = []
    async with open_catalog(pipeline.catalog) as catalog:
        for n in range(count):
            made = await products.create_product(
                catalog, ProductCreate(sku=f"PT-{uuid.uuid4().hex[:6]}", name=f"P{n}", price="1.00", stock=1)
            )
            for version, price in ((1, "2.00"), (2, "3.00")):
                await products.update_product(
                    catalog, made.id, ProductPatch(price=price), ExpectedVersion(version, False)
                )
            ids.append(made.id)
    return ids


async def test_each_product_keeps_to_one_partition_in_order_and_workers_read_them_all(
    pipeline, redis_cluster
):
    ids = await changed_products(pipeline, 9)
    await pipeline.relay()
    keys = keys_for(pipeline.catalog)
    masters = {redis_cluster.master_of(keys.catalog_events(i)).port for i in range(3)}
    assert len(masters) == 3  # one partition per master
    for partition in range(3):
        entries = await pipeline.redis.xrange(keys.catalog_events(partition))
        seen: dict[int, list[int]] = {}
        for _, fields in entries:
            seen.setdefault(int(fields[b"aggregate_id"]), []).append(int(fields[b"version"]))
        assert set(seen) == {pid for pid in ids if pid % 3 == partition}
        assert all(versions == [1, 2, 3] for versions in seen.values())

    assert await pipeline.work() == 27
    health = await pipeline_status(pipeline.redis, keys, CART_GROUP)
    assert [p.stream_length for p in health.partitions] == [9, 9, 9]
    assert (health.stream_length, health.lag, health.pending, health.dead) == (27, 0, 0, 0)


async def test_the_partition_count_changes_only_once_the_old_partitions_are_drained(pipeline):
    await changed_products(pipeline, 3)
    await pipeline.relay()  # three partitions in force, their events not yet applied
    keys = keys_for(pipeline.catalog)
    assert await partitions.in_force(pipeline.redis, keys) == 3
    two = pipeline.with_partitions(2)
    with pytest.raises(partitions.PartitionsChanged, match="still has"):
        await two.relay()
    with pytest.raises(partitions.PartitionsChanged, match="in force"):
        await partitions.check_worker(two.redis, keys_for(two.cart))

    assert await pipeline.work() == 9  # drained on the old count
    await changed_products(two, 2)
    await two.relay()  # adopts 2 and sends the new events on it
    assert await partitions.in_force(pipeline.redis, keys) == 2
    assert await two.work() == 6


async def park_one(redis: Redis, keys: Keys, partition: int, event_type: str) -> str:
    """An entry appended to `partition`, read by a worker `w`, then parked as dead; its id."""
    from shared.events.dead_letters import DeadLetters

    stream = keys.catalog_events(partition)
    await redis.xgroup_create(stream, CART_GROUP, id="0", mkstream=True)
    message_id = (await redis.xadd(stream, {"type": event_type, "event": "{}"})).decode()
    await redis.xreadgroup(CART_GROUP, "w", {stream: ">"})
    dead = DeadLetters(redis, keys, CART_GROUP, partition)
    assert await dead.park(message_id.encode(), "w", deliveries=5, min_idle_ms=0)
    return message_id


async def test_the_operators_tool_goes_over_every_partition(pipeline, redis_cluster, monkeypatch, capsys):
    from shared.events.cli import main

    keys, redis = keys_for(pipeline.cart), pipeline.redis
    first = await park_one(redis, keys, 0, "product.updated")
    last = await park_one(redis, keys, 2, "product.deleted")
    for name, value in {
        "ENV": "test",
        "REDIS_URL": redis_cluster.url,
        "REDIS_CLUSTER": "true",
        "STREAM_PARTITIONS": "3",
        "REDIS_KEY_PREFIX": keys.prefix,
    }.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["dead"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in listed] == [["partition=0", first], ["partition=2", last]]
    assert await asyncio.to_thread(main, ["show", last]) == 0
    assert "product.deleted" in capsys.readouterr().out  # found in partition 2 without being told
    assert await asyncio.to_thread(main, ["show", last, "--partition", "7"]) == 1  # no such one
    assert await asyncio.to_thread(main, ["replay", "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    health = await pipeline_status(redis, keys, CART_GROUP)
    assert health.dead == 0 and [p.stream_length for p in health.partitions] == [2, 0, 2]
