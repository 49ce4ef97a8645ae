"""The relay notices by itself that Redis lost events it sent, and sends them again: after a
restart without data, a failover to a replica that lagged, and even when something else
appended to the stream after the loss."""

import asyncio
import contextlib
import logging
import uuid

import asyncpg
import pytest
from redis.asyncio import Redis

from app_product.app import open_catalog
from app_product.catalog import products
from app_product.catalog.models import ProductCreate
from app_product.outbox.healing import StreamGuard
from app_product.outbox.relay import Relay
from app_product.settings import CatalogSettings
from devtools.servers import throwaway_redis
from shared.config import load_settings
from shared.keys import keys_for
from tests.support.env import service_env
from tests.support.waits import until


@pytest.fixture
def own_redis():
    """A Redis of this test's own: it loses its data. A single server in either mode of the suite:
    the relay is told so (`own_settings`)."""
    with throwaway_redis() as server:
        yield server


async def create_products(settings: CatalogSettings, count: int) -> None:
    async with open_catalog(settings) as catalog:
        for _ in range(count):
            sku = f"H-{uuid.uuid4().hex[:8]}"
            await products.create_product(catalog, ProductCreate(sku=sku, name="Healed", price="1.00"))


@contextlib.asynccontextmanager
async def running_relay(settings: CatalogSettings, redis_url: str):
    """The relay polling every 0.1 s, in this process, until the block ends."""
    redis, stop = Redis.from_url(redis_url), asyncio.Event()
    relay = Relay(settings, redis)
    task = asyncio.create_task(relay.run(stop))
    try:
        yield relay
    finally:
        stop.set()
        await task
        await redis.aclose()


async def stream_event_ids(redis_url: str, stream: str) -> list[str]:
    async with Redis.from_url(redis_url) as redis:
        return [fields[b"event_id"].decode() for _, fields in await redis.xrange(stream)]


async def outbox_event_ids(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [r["event_id"] for r in await conn.fetch("SELECT event_id::text FROM outbox ORDER BY id")]
    finally:
        await conn.close()


def settings_for(database_url: str, redis_url: str, **extra: str) -> CatalogSettings:
    return load_settings(
        CatalogSettings, service_env(database_url, redis_url, RELAY_POLL_SECONDS="0.1", **extra)
    )


def own_settings(database_url: str, redis_url: str) -> CatalogSettings:
    """The relay's settings for a single Redis of the test's own (not the suite's cluster)."""
    return settings_for(database_url, redis_url, REDIS_CLUSTER="false")


async def test_redis_back_empty_gets_every_event_again(catalog_db, own_redis, caplog):
    caplog.set_level(logging.WARNING, logger="app_product.relay")
    settings = own_settings(catalog_db, own_redis.url)
    stream = keys_for(settings).catalog_events()
    await create_products(settings, 5)
    expected = await outbox_event_ids(catalog_db)
    async with running_relay(settings, own_redis.url) as relay:
        await until(lambda: _equal(stream_event_ids(own_redis.url, stream), expected))
        own_redis.lose_data()  # the idle relay must notice: nothing new is sent to trip it
        await until(lambda: _equal(stream_event_ids(own_redis.url, stream), expected))
        assert relay.state.resent == 5
        own_redis.lose_data()  # and again: the count is the process's, for its metric
        await until(lambda: _equal(stream_event_ids(own_redis.url, stream), expected))
        assert relay.state.resent == 10
    warnings = [r.getMessage() for r in caplog.records if "lost catalog events" in r.getMessage()]
    assert len(warnings) == 2 and all("5 event(s) marked to be sent again" in w for w in warnings)


async def test_a_replica_that_lagged_gets_what_it_missed(catalog_db, own_redis):
    """The stream still exists, epoch and all, but ends before the last entries sent."""
    settings = own_settings(catalog_db, own_redis.url)
    stream = keys_for(settings).catalog_events()
    await create_products(settings, 3)
    async with running_relay(settings, own_redis.url) as relay:
        await until(lambda: _equal(stream_event_ids(own_redis.url, stream), outbox_event_ids(catalog_db)))
        async with Redis.from_url(own_redis.url) as redis:
            # What a replica that missed the last two entries holds: the first one, same id.
            [(first_id, first)] = await redis.xrange(stream, count=1)
            await redis.delete(stream)
            await redis.xadd(stream, first, id=first_id)
        await create_products(settings, 2)  # new events: their append must not hide the gap
        # The three went in one batch, which went beyond the replica: all three are sent again
        # (a batch is the unit the relay records), then the two new ones.
        await until(lambda: _count(stream_event_ids(own_redis.url, stream), 1 + 3 + 2))
        assert relay.state.resent == 3
    assert sorted(set(await stream_event_ids(own_redis.url, stream))) == sorted(
        await outbox_event_ids(catalog_db)
    )


async def test_an_entry_appended_by_someone_else_after_the_loss_does_not_hide_it(catalog_db, own_redis):
    """Redis comes back empty and another producer appends first (POST /internal/events): the
    stream's last id is then newer than the relay's, but the epoch it wrote is gone."""
    settings = own_settings(catalog_db, own_redis.url)
    stream = keys_for(settings).catalog_events()
    await create_products(settings, 3)
    expected = await outbox_event_ids(catalog_db)
    relay = Relay(settings, Redis.from_url(own_redis.url))
    await relay.run(asyncio.Event(), burst=True)
    own_redis.lose_data()
    async with Redis.from_url(own_redis.url) as redis:
        await redis.xadd(stream, {"type": "other", "event_id": "someone-else", "event": "{}"})
    await relay.run(asyncio.Event(), burst=True)
    await relay.redis.aclose()
    assert relay.state.resent == 3
    assert sorted(await stream_event_ids(own_redis.url, stream)) == sorted([*expected, "someone-else"])


async def test_a_relay_started_after_a_heal_sends_what_it_marked_without_a_second_alarm(
    catalog_db, own_redis, caplog
):
    """A relay can die between marking what was lost and sending it again. The heal also made
    the relay's state forget its last id, so the next relay sends the marked rows as they are,
    without taking the loss for a new one."""
    caplog.set_level(logging.WARNING, logger="app_product.relay")
    settings = own_settings(catalog_db, own_redis.url)
    stream = keys_for(settings).catalog_events()
    await create_products(settings, 3)
    expected = await outbox_event_ids(catalog_db)
    first = Relay(settings, Redis.from_url(own_redis.url))
    await first.run(asyncio.Event(), burst=True)
    await first.redis.aclose()
    own_redis.lose_data()
    conn = await asyncpg.connect(catalog_db)
    try:  # what the first relay would do next, had it noticed the loss before dying
        state = StreamGuard(stream)
        await state.load(conn)
        assert await state.heal(conn, "0-0") == 3
    finally:
        await conn.close()
    caplog.clear()
    second = Relay(settings, Redis.from_url(own_redis.url))
    await second.run(asyncio.Event(), burst=True)
    await second.redis.aclose()
    assert (second.sent, second.state.resent) == (3, 0)
    assert not [r for r in caplog.records if "lost catalog events" in r.getMessage()]
    assert sorted(await stream_event_ids(own_redis.url, stream)) == sorted(expected)


async def _equal(got, expected) -> bool:
    want = await expected if asyncio.iscoroutine(expected) else expected
    return sorted(await got) == sorted(want)


async def _count(got, count: int) -> bool:
    return len(await got) == count
