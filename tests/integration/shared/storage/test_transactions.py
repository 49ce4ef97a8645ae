"""A transaction that fails on its connection gives the connection back: the task that ran it
can go on, and other tasks get connections (databases 0.9 kept the task bound to a dead
connection, and a failed BEGIN kept its connection for good)."""

import asyncio

import asyncpg
import pytest

from app_product.settings import CatalogSettings
from shared.config import load_settings
from shared.storage.postgres import DATABASE_UNAVAILABLE, create_database
from tests.support.env import service_env


@pytest.fixture
async def small_pool(postgres, redis_server):
    settings = load_settings(
        CatalogSettings,
        service_env(postgres.url("postgres"), redis_server.url, DATABASE_POOL_MIN="1", DATABASE_POOL_MAX="2"),
    )
    db = create_database(settings)
    await db.connect()
    yield db
    async with asyncio.timeout(10):  # a connection never given back would hold this for ever
        await db.disconnect()


async def a_transaction_whose_connection_dies(db) -> None:
    """The server ends the session in the middle of the transaction (as a crash or an admin's
    pg_terminate_backend would); the rollback then fails as well."""
    with pytest.raises(DATABASE_UNAVAILABLE):
        async with db.transaction():
            await db.execute("SELECT pg_terminate_backend(pg_backend_pid())")


async def test_the_same_task_goes_on_after_its_connection_died(small_pool):
    await a_transaction_whose_connection_dies(small_pool)
    async with asyncio.timeout(5):
        assert await small_pool.fetch_val("SELECT 1") == 1
        async with small_pool.transaction():
            assert await small_pool.fetch_val("SELECT 2") == 2


async def test_a_failing_begin_gives_the_connection_back(small_pool, monkeypatch):
    async def refused(self, *args, **kwargs):
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    async def begin_that_fails() -> None:
        with pytest.raises(asyncpg.ConnectionDoesNotExistError):
            async with small_pool.transaction():
                pass

    with monkeypatch.context() as patched:
        patched.setattr(asyncpg.transaction.Transaction, "start", refused)
        for _ in range(2):  # as many as the pool holds, each in a task of its own
            await asyncio.create_task(begin_that_fails())
    async with asyncio.timeout(5):  # a pool whose connections were all kept waits for ever
        assert await small_pool.fetch_val("SELECT 1") == 1
