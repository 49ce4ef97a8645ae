"""The product cache on a real Redis, each Redis call it makes failing on its own: logged by
name, once per outage, and stepped around by reading the catalog directly."""

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.integration.shared.resilience.test_product_cache import Catalog, product
from tests.integration.shared.resilience.test_product_cache_paths import cache, errors_and_warnings
from tests.support import redis_mode

CACHE_LOG = "shared.resilience.product_cache"
# The client method the cache reads with: MGET; on a cluster, an MGET per slot, pipelined.
READ = "mget_nonatomic" if redis_mode.CLUSTER else "mget"


def fail_pipelines(monkeypatch, client) -> None:
    real = client.pipeline

    def pipeline(*args, **kwargs):
        pipe = real(*args, **kwargs)

        async def execute(*_args, **_kwargs):
            raise RedisConnectionError("boom")

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(client, "pipeline", pipeline)


async def raise_boom(*_args, **_kwargs):
    raise RedisConnectionError("boom")


def read_without_pipelines(monkeypatch, client) -> None:
    """On a cluster the cache's read is pipelined too: read key by key instead (the same
    answer), so that failing pipelines fails only what the test means to fail."""

    async def mget_nonatomic(keys, *more):
        return [await client.get(key) for key in [*keys, *more]]

    if redis_mode.CLUSTER:
        monkeypatch.setattr(client, "mget_nonatomic", mget_nonatomic)


@pytest.mark.parametrize("action", ["read", "epoch", "lock", "write", "unlock"])
async def test_each_redis_call_failing_is_logged_by_name_and_stepped_around(
    client, keys, monkeypatch, caplog, action
):
    reader = cache(client, keys)
    catalog = Catalog({7: product(7)})
    if action == "read":
        monkeypatch.setattr(client, READ, raise_boom)
    elif action in ("epoch", "lock"):
        read_without_pipelines(monkeypatch, client)
        fail_pipelines(monkeypatch, client)
    elif action == "write":
        monkeypatch.setattr(reader, "_write", raise_boom)
    else:
        monkeypatch.setattr(reader, "_release", raise_boom)
    with caplog.at_level(logging.ERROR, logger=CACHE_LOG):
        if action == "epoch":
            assert await reader.refresh([7], catalog.fetch) == {7: product(7)}
        else:
            assert (await reader.get_many([7], catalog.fetch)).found == {7: product(7)}
    errors, _ = errors_and_warnings(caplog)
    named = "read" if action == "epoch" else action
    assert errors == [f"product cache cannot {named} Redis (boom); reading the catalog directly"]
    assert reader.redis_failures == (
        2 if action == "read" else 1
    )  # a read fails twice: before and after the lock
    if action in ("epoch", "lock"):  # the epoch unknown: the fetch's answer is not written
        assert await client.get(keys.product(7)) is None


async def test_redis_failing_is_logged_once_per_outage(client, keys, monkeypatch, caplog):
    reader = cache(client, keys)
    catalog = Catalog({1: product(1)})
    real_mget = getattr(client, READ)
    down = True

    async def mget(*args, **kwargs):
        if down:
            raise RedisConnectionError("boom")
        return await real_mget(*args, **kwargs)

    monkeypatch.setattr(client, READ, mget)
    with caplog.at_level(logging.WARNING, logger=CACHE_LOG):
        await reader.get_many([1], catalog.fetch)
        await reader.get_many([1], catalog.fetch)
        assert errors_and_warnings(caplog) == (
            ["product cache cannot read Redis (boom); reading the catalog directly"],
            [],
        )
        down = False
        await reader.get_many([1], catalog.fetch)
        down = True
        await reader.get_many([1], catalog.fetch)
    errors, warnings = errors_and_warnings(caplog)
    assert len(errors) == 2 and warnings == ["product cache reaches Redis again"]
    assert reader.redis_failures == 6  # each failed get_many: its read, and the read after the lock
