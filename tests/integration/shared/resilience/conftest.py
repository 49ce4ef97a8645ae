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


@pytest.fixture(params=["cluster names"] if redis_mode.CLUSTER else ["single-node names", "cluster names"])
def keys(request: pytest.FixtureRequest) -> Keys:
    """On a single Redis the tests run with both layouts: with a cluster's names products spread
    over the cache's 16 shards, so the per-shard paths (a script call and an epoch per shard)
    are exercised, and mutation-tested, without a cluster; one server takes keys of any slot."""
    return Keys(f"t{uuid.uuid4().hex[:8]}", cluster=request.param == "cluster names")
