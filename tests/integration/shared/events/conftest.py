"""Fixtures of the event tests: a client of the session's Redis, and keys of their own."""

import uuid

import pytest
from redis.asyncio import Redis

from shared.keys import Keys


@pytest.fixture
async def redis(redis_server):
    async with Redis.from_url(redis_server.url) as client:
        yield client


@pytest.fixture
def keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:8]}")
