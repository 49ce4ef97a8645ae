"""The cart's read pool reads DATABASE_URL as `databases` does, so both pools reach one server."""

import pytest
from databases import DatabaseURL
from databases.backends.postgres import PostgresBackend

from shared.storage.postgres import connect_arguments

URLS = [
    "postgresql://postgres@127.0.0.1:5432/storefront_cart",
    "postgresql://shop:p%40ss@db.example:6543/shop?ssl=true",
    "postgresql://shop@/shop?host=/var/run/postgresql",
    "postgres://shop:secret@db.example/shop?ssl=false",
]


@pytest.mark.parametrize("url", URLS)
def test_the_read_pool_reads_the_url_as_databases_does(url):
    parsed = DatabaseURL(url)
    # What databases' asyncpg backend hands asyncpg.create_pool (its connect method, spelled
    # out; a private helper, so this test fails if databases changes how it reads URLs).
    expected = {
        "host": parsed.hostname,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "database": parsed.database,
        **PostgresBackend(parsed)._get_connection_kwargs(),
    }
    assert connect_arguments(url) == expected


def test_ssl_and_socket_directory_are_understood():
    assert connect_arguments(URLS[1])["ssl"] is True and connect_arguments(URLS[1])["password"] == "p@ss"
    assert connect_arguments(URLS[2])["host"] == "/var/run/postgresql"
