"""Fixtures of the product cache tests: a client of the session's Redis, and keys of their own
(both as the services have them in the suite's mode: tests.support.redis_mode)."""

import uuid

import pytest

from shared.keys import Keys
from tests.support import redis_mode


@pytest.fixture
async def client(redis_server):
    async with redis_mode.client(redis_server.url) as redis:
        yield redis


@pytest.fixture
def keys() -> Keys:
    return redis_mode.test_keys(f"t{uuid.uuid4().hex[:8]}")
