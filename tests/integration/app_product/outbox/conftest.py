"""The outbox tests' fixture: a catalog database of the test's own, migrated."""

import asyncio

import pytest

from shared.storage.migrations import SQL_ROOT, migrate


@pytest.fixture
def catalog_db(fresh_db_url):
    asyncio.run(migrate(fresh_db_url, SQL_ROOT / "catalog"))
    return fresh_db_url
