"""Distributed tracing with OpenTelemetry: on when OTEL_EXPORTER_OTLP_ENDPOINT (or the traces
one) is set, off otherwise, and then it costs nothing measurable: no middleware is added, no
library is instrumented, and the API's spans are no-ops.

On, each process exports its spans over OTLP/HTTP (the standard OTEL_* variables configure the
exporter and the batch processor; `service.name` is OTEL_SERVICE_NAME or the process's own name),
and instruments what it talks to: incoming HTTP (the ASGI middleware, span named by route
template), the cart's calls to the catalog (httpx, which sends `traceparent`), PostgreSQL
(asyncpg: a span per statement, prepared ones included) and Redis (redis-py's asyncio client,
whose spans cover the awaited command since the instrumentation's 2023 fix). The event
pipeline's spans are made by hand (shared.events.tracing): what a library sees there is one
XADD or one script call, not the events that went through it. W3C `traceparent`/`tracestate` is
the propagation format, in HTTP headers and in stream entries.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

log = logging.getLogger(__name__)

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_provider: TracerProvider | None = None


def enabled() -> bool:
    """Whether this process traces (configure_tracing ran and found an exporter to use)."""
    return _provider is not None


def configure_tracing(service_name: str, exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on for this process if an OTLP endpoint is configured (or `exporter` is
    given: tests pass an in-memory one); True if it is on. Call once, at start."""
    global _provider
    if _provider is not None:
        return True
    if exporter is None:
        if not any(os.environ.get(name) for name in _ENDPOINTS):
            return False
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor: SimpleSpanProcessor | BatchSpanProcessor = BatchSpanProcessor(OTLPSpanExporter())
    else:
        processor = SimpleSpanProcessor(exporter)
    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES; OTEL_SERVICE_NAME, if set, names the process.
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _instrument_libraries()
    _provider = provider
    log.info("tracing on: %s", provider.resource.attributes.get("service.name"))
    return True


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().instrument()
    RedisInstrumentor().instrument()


def shutdown_tracing() -> None:
    """Export what is buffered (call before the process exits)."""
    if _provider is not None:
        _provider.force_flush()
        _provider.shutdown()


def trace_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex, for log lines; None when no span is."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
