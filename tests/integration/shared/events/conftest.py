"""Fixtures of the event tests: a client of the session's Redis, and keys of their own (both as
the services have them in the suite's mode: tests.support.redis_mode)."""

import uuid

import pytest
from redis.asyncio import Redis

from shared.keys import Keys
from tests.support.redis_mode import CLUSTER, client, test_keys


@pytest.fixture
async def redis(redis_server):
    async with client(redis_server.url) as redis:
        yield redis


@pytest.fixture
def keys() -> Keys:
    return test_keys(f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def stream_master(redis, keys):
    """A client of the server that holds the stream (and the keys beside it, in its slot), for
    what a server tells of its own connections only (MONITOR, CLIENT LIST): the session's
    server; on a cluster, the master of the stream's slot."""
    if not CLUSTER:
        yield redis
        return
    node = redis.get_node_from_key(keys.catalog_events())
    async with Redis(host=node.host, port=node.port) as master:
        yield master
