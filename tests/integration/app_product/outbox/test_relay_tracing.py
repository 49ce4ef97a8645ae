"""The relay with tracing on (in-memory spans): a change's trace goes into its outbox row, then
into its stream entry, and the batch that publishes it is a producer span linked to it."""

import asyncio
import uuid

from opentelemetry.trace import SpanKind

from app_product.app import open_catalog
from app_product.catalog import categories
from app_product.catalog.models import CategoryCreate
from app_product.outbox.relay import Relay
from shared.keys import keys_for
from tests.integration.app_product.outbox.test_relay import settings_for, stream_events
from tests.support.redis_mode import client


async def test_a_changes_trace_reaches_its_stream_entry_and_links_the_publishing_batch(
    catalog_db, redis_server, spans
):
    exporter, request_tracer = spans
    settings = settings_for(catalog_db, redis_server.url)
    async with open_catalog(settings) as catalog:
        with request_tracer.start_as_current_span("POST /api/categories") as request:
            await categories.create_category(catalog.db, CategoryCreate(name=f"T{uuid.uuid4().hex[:6]}"))
        await categories.create_category(catalog.db, CategoryCreate(name=f"U{uuid.uuid4().hex[:6]}"))
    trace_id = format(request.get_span_context().trace_id, "032x")
    span_id = format(request.get_span_context().span_id, "016x")

    async with client(redis_server.url) as redis:
        await Relay(settings, redis).run(asyncio.Event(), burst=True)
    traced, untraced = await stream_events(redis_server.url, settings)
    assert traced["traceparent"].split("-")[1:3] == [trace_id, span_id]
    assert untraced["traceparent"] == ""  # a change outside any trace carries none

    [publish] = [span for span in exporter.get_finished_spans() if span.name == "catalog-events publish"]
    assert publish.kind == SpanKind.PRODUCER
    assert publish.attributes["messaging.destination.name"] == keys_for(settings).catalog_events()
    assert publish.attributes["messaging.batch.message_count"] == 2
    assert [format(link.context.trace_id, "032x") for link in publish.links] == [trace_id]
