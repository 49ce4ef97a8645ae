"""The read pool on a real PostgreSQL."""

import asyncpg
import pytest

from shared.storage.postgres import ReadPool


async def test_the_read_pool_takes_a_database_url_with_databases_options(catalog_db_url):
    # databases reads min_size (and ssl) from the URL itself; asyncpg given the URL as it is
    # would send min_size to the server as a setting, and the server would refuse to connect.
    pool = ReadPool(
        f"{catalog_db_url}?min_size=1&ssl=false",
        min_size=1,
        max_size=2,
        command_timeout=5,
        statement_timeout=1,
    )
    await pool.connect()
    try:
        await pool.ping()
        assert [tuple(row) for row in await pool.fetch("SELECT $1::int + 1", 41)] == [(42,)]
    finally:
        await pool.disconnect()


async def test_a_read_running_past_the_statement_timeout_is_cancelled_by_the_server(catalog_db_url):
    pool = ReadPool(catalog_db_url, min_size=1, max_size=1, command_timeout=10, statement_timeout=0.2)
    await pool.connect()
    try:
        with pytest.raises(asyncpg.QueryCanceledError):
            await pool.fetch("SELECT pg_sleep(5)")
        # The same connection (max_size 1) goes on serving.
        assert [tuple(row) for row in await pool.fetch("SELECT 1")] == [(1,)]
    finally:
        await pool.disconnect()
