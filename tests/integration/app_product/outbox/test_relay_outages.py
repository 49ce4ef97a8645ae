"""The relay through a PostgreSQL crash: it connects again by itself, takes the lock again,
sends what committed meanwhile, and says so once per outage. Through PostgreSQL or Redis
outages it retries with pauses that double up to 30 s, and start short again for the next
outage."""

import asyncio
import logging
import re

import pytest
from redis.asyncio import Redis

from app_product.outbox import relay as relay_module
from app_product.outbox.relay import Relay
from devtools.servers import throwaway_postgres, throwaway_redis
from shared.keys import keys_for
from shared.signals import sleep_unless_stopped
from shared.storage.migrations import SQL_ROOT, migrate
from tests.integration.app_product.outbox.test_healing import create_products, own_settings, settings_for
from tests.support.redis_mode import client
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
    stream = keys_for(settings).catalog_events()
    redis, stop = client(redis_server.url), asyncio.Event()
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


DOUBLING = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]  # seconds, capped


@pytest.fixture
def pauses(monkeypatch):
    """The pauses the relay asks for between retries, in order. Each is taken as 10 ms, so
    that a test sees the whole schedule in well under a second."""
    asked: list[float] = []

    async def pause(stop: asyncio.Event, seconds: float) -> None:
        asked.append(seconds)
        await sleep_unless_stopped(stop, 0.01)

    monkeypatch.setattr(relay_module, "sleep_unless_stopped", pause)
    return asked


async def _at_least(values: list, count: int) -> bool:
    return len(values) >= count


async def test_database_retries_pause_longer_each_time_and_start_short_after_reconnecting(
    own_postgres, redis_server, pauses, caplog
):
    caplog.set_level(logging.WARNING, logger="app_product.relay")
    url = own_postgres.url("catalog")
    await migrate(url, SQL_ROOT / "catalog")
    settings = settings_for(url, redis_server.url)
    redis, stop = client(redis_server.url), asyncio.Event()
    relay = Relay(settings, redis)
    own_postgres.crash()  # down before the relay ever connects
    task = asyncio.create_task(relay.run(stop))
    try:
        await until(lambda: _at_least(pauses, len(DOUBLING)))
        assert pauses[: len(DOUBLING)] == DOUBLING
        own_postgres.start()

        async def leading() -> bool:
            return relay.active

        await until(leading, seconds=30)
        pauses.clear()
        own_postgres.crash()
        await until(lambda: _at_least(pauses, 2))
        assert pauses[:2] == DOUBLING[:2]  # a new outage: not 30 s from the last one
        assert not task.done()
    finally:
        stop.set()
        await task
        await redis.aclose()
    messages = [r.getMessage() for r in caplog.records]
    down = [m for m in messages if m.startswith("PostgreSQL (relay) cannot be reached")]
    assert len(down) == 2  # once per outage
    assert all(re.match(r"PostgreSQL \(relay\) cannot be reached \(\w+Error", m) for m in down), down


async def test_redis_retries_pause_longer_each_time_and_start_short_after_it_is_back(catalog_db, pauses):
    with throwaway_redis() as server:
        settings = own_settings(catalog_db, server.url)  # polls every 0.1 s; its own single Redis
        redis = Redis.from_url(server.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        relay, stop = Relay(settings, redis), asyncio.Event()
        server.stop()
        task = asyncio.create_task(relay.run(stop))
        try:
            await until(lambda: _at_least(pauses, len(DOUBLING)))
            assert pauses[: len(DOUBLING)] == DOUBLING
            server.start()

            async def reachable() -> bool:
                return not relay.redis_outage.down

            await until(reachable)
            pauses.clear()
            server.stop()
            await until(lambda: _at_least(pauses, 2))
            assert pauses[:2] == DOUBLING[:2]
            assert not task.done()
        finally:
            stop.set()
            await task
            await redis.aclose()
