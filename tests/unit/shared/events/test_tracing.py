"""The event pipeline's hand-made spans and the log lines' trace ids, with an in-memory exporter
and a provider of the test's own (the `spans` fixture: the process's global one is left alone)."""

import json
import logging

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from shared.events import tracing as event_tracing
from shared.logs import JsonFormatter


def test_nothing_is_made_when_tracing_is_off():
    assert event_tracing.current_traceparent() is None
    with event_tracing.batch_span(
        "x", "stream", ["00-" + "1" * 32 + "-" + "2" * 16 + "-01"], SpanKind.CONSUMER
    ):
        assert not trace.get_current_span().get_span_context().is_valid


def test_a_change_records_its_requests_trace_and_the_worker_continues_it(spans):
    exporter, request_tracer = spans
    with request_tracer.start_as_current_span("PATCH /api/products/{id}") as request:
        traceparent = event_tracing.current_traceparent()
    trace_id = format(request.get_span_context().trace_id, "032x")
    assert traceparent is not None and traceparent.split("-")[1] == trace_id
    with event_tracing.batch_span("catalog-events process", "s", [traceparent, ""], SpanKind.CONSUMER):
        event_tracing.mark_applied(
            "s", [(traceparent, "product.updated", "1-0"), ("", "product.updated", "1-1")]
        )
    finished = {span.name: span for span in exporter.get_finished_spans()}
    batch, applied = finished["catalog-events process"], finished["catalog event applied"]
    assert [format(link.context.trace_id, "032x") for link in batch.links] == [trace_id]
    assert batch.attributes["messaging.batch.message_count"] == 2
    assert format(applied.context.trace_id, "032x") == trace_id  # in the request's own trace
    assert applied.parent.span_id == request.get_span_context().span_id
    assert [link.context.span_id for link in applied.links] == [batch.context.span_id]
    assert len([s for s in exporter.get_finished_spans() if s.name == "catalog event applied"]) == 1


def test_a_log_line_carries_the_active_spans_ids(spans):
    _, tracer = spans
    record = logging.makeLogRecord({"msg": "hello", "levelname": "INFO", "name": "t"})
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    with tracer.start_as_current_span("s") as span:
        line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")


def test_an_entry_without_a_trace_is_not_linked(spans):
    exporter, _ = spans
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    with event_tracing.batch_span("catalog-events publish", "s", ["", "garbage"], SpanKind.PRODUCER):
        pass
    [span] = exporter.get_finished_spans()
    assert span.links == ()
