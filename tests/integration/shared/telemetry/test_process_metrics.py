"""Metrics of the processes that serve no HTTP: the worker's and the relay's counts, the stream
and outbox gauges computed at scrape time, the listener, and a scrape while Redis is down."""

import asyncio
import uuid

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from app_product.outbox.metrics import expose_relay
from app_product.outbox.relay import Relay
from devtools.servers import free_port, throwaway_redis
from shared.events.metrics import expose_stream
from shared.events.status import StreamStatus
from shared.keys import CART_GROUP, Keys
from shared.storage.migrations import SQL_ROOT, migrate
from shared.storage.postgres import connect_arguments
from shared.telemetry.metrics import Metrics
from tests.integration.app_product.outbox.test_healing import create_products, settings_for
from tests.support.redis_mode import client


def values(exposition: bytes) -> dict[tuple[str, frozenset], float]:
    found = {}
    for family in text_string_to_metric_families(exposition.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


@pytest.fixture
def catalog_db(fresh_db_url):
    asyncio.run(migrate(fresh_db_url, SQL_ROOT / "catalog"))
    return fresh_db_url


async def test_the_relay_reports_the_backlog_and_what_it_sent(catalog_db, redis_server):
    settings = settings_for(catalog_db, redis_server.url)
    await create_products(settings, 3)
    pool = await asyncpg.create_pool(**connect_arguments(catalog_db), min_size=0, max_size=1)
    redis = client(redis_server.url)
    relay, metrics = Relay(settings, redis), Metrics()
    expose_relay(metrics, relay, pool)
    try:
        before = values(await metrics.render())
        assert value(before, "storefront_outbox_unsent_rows") == 3
        assert value(before, "storefront_outbox_oldest_unsent_age_seconds") > 0
        assert value(before, "storefront_outbox_sent_rows_total") == 0
        await relay.run(asyncio.Event(), burst=True)
        metrics._readings.probes[0].at = float("-inf")  # past the probe's cache: computed again
        after = values(await metrics.render())
        assert value(after, "storefront_outbox_unsent_rows") == 0
        assert value(after, "storefront_outbox_sent_rows_total") == 3
        assert value(after, "storefront_relay_batches_total") == 1
        assert value(after, "storefront_relay_batch_duration_seconds_count") == 1
        assert value(after, "storefront_metrics_probe_up", probe="outbox") == 1
    finally:
        await pool.close()
        await redis.aclose()


async def test_stream_gauges_and_a_scrape_while_redis_is_down():
    with throwaway_redis() as server:
        redis = Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        keys = Keys(f"t{uuid.uuid4().hex[:8]}")
        stream = keys.catalog_events()
        for n in range(5):
            await redis.xadd(stream, {"n": n})
        await redis.xgroup_create(stream, CART_GROUP, id="0")
        await redis.xreadgroup(CART_GROUP, "w-1", {stream: ">"}, count=2)  # 2 pending, 3 lagging
        metrics = Metrics()
        expose_stream(metrics, StreamStatus(redis, keys, CART_GROUP))
        found = values(await metrics.render())
        group = {"stream": stream, "group": CART_GROUP}
        assert value(found, "storefront_stream_length", stream=stream) == 5
        assert value(found, "storefront_stream_group_lag", **group) == 3
        assert value(found, "storefront_stream_group_messages_pending", **group) == 2
        assert value(found, "storefront_stream_group_consumer_messages_pending", **group, consumer="w-1") == 2
        assert value(found, "storefront_stream_dead_events", **group) == 0
        assert value(found, "storefront_stream_oldest_pending_age_seconds", **group) >= 0
        server.stop()
        metrics._readings.probes[0].at = float("-inf")
        down = values(await asyncio.wait_for(metrics.render(), 5))  # answers, with the last values
        assert value(down, "storefront_metrics_probe_up", probe="stream") == 0
        assert value(down, "storefront_stream_length", stream=stream) == 5
        await redis.aclose()


async def test_a_process_without_http_serves_its_metrics_on_its_listener():
    metrics, port = Metrics(), free_port()
    calls = []
    metrics.counter("storefront_test_things", "Things.", lambda: 7)

    async def refresh():
        calls.append(1)
        return []

    metrics.probe("test", refresh)
    metrics.listen("127.0.0.1", port)
    try:
        answer = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        metrics.close()
    assert answer.status_code == 200
    assert "storefront_test_things_total 7.0" in answer.text
    assert calls == [1]  # the probe ran on this process's loop, at the scrape
