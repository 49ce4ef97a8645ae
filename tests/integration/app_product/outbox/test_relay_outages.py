"""The relay through a PostgreSQL crash: it connects again by itself, takes the lock again,
sends what committed meanwhile, and says so once per outage."""

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from app_product.outbox.relay import Relay
from devtools.servers import throwaway_postgres
from shared.keys import Keys
from shared.storage.migrations import SQL_ROOT, migrate
from tests.integration.app_product.outbox.test_healing import create_products, settings_for
from tests.support.waits import until


@pytest.fixture
def own_postgres():
    with throwaway_postgres(durable=True) as server:
        yield server


async def test_the_relay_rides_out_a_database_crash(own_postgres, redis_server, caplog):
    caplog.set_level(logging.WARNING, logger="app_product.relay")
    url = own_postgres.url("catalog")
    await migrate(url, SQL_ROOT / "catalog")
    settings = settings_for(url, redis_server.url)
    stream = Keys(settings.redis_key_prefix).catalog_events()
    redis, stop = Redis.from_url(redis_server.url), asyncio.Event()
    relay = Relay(settings, redis)
    task = asyncio.create_task(relay.run(stop))
    try:
        await create_products(settings, 2)
        await until(lambda: _length_at_least(redis, stream, 2))
        own_postgres.crash()

        async def relay_saw_it() -> bool:
            return relay.database_outage.down

        await until(relay_saw_it)
        own_postgres.start()
        await create_products(settings, 3)
        await until(lambda: _length_at_least(redis, stream, 5), seconds=30)
        assert not task.done()
    finally:
        stop.set()
        await task
        await redis.aclose()
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("PostgreSQL (relay) cannot be reached") for m in messages) == 1
    assert sum(m.startswith("PostgreSQL (relay) is reachable again") for m in messages) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def _length_at_least(redis: Redis, stream: str, length: int) -> bool:
    return await redis.xlen(stream) >= length
