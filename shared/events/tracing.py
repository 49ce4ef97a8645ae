"""Spans of the event pipeline, made by hand: a library instrumenting Redis sees one XADD or one
script call for a batch, not the events that went through it.

An event carries the trace of the change that made it: the catalog records the request's
`traceparent` with its outbox rows, and the relay writes it into each stream entry. The relay
makes a span per batch it appends, linked to each event's trace (a batch holds many traces; a
span has one parent). A worker makes a span per batch it applies, linked the same way, and,
once the batch committed, a short child span in each event's own trace ("catalog event
applied"): so the trace of one admin's PATCH shows the carts it reached, and the batch span
shows the work that did it, without a transaction-sized span per event. All of it is skipped
when tracing is off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind

from shared.telemetry import tracing

TRACER = trace.get_tracer("storefront.events")


def current_traceparent() -> str | None:
    """The active span's W3C traceparent, to record with an event; None when tracing is off."""
    if not tracing.enabled():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def _links(traceparents: Sequence[str]) -> list[Link]:
    links = []
    for traceparent in traceparents:
        context = trace.get_current_span(propagate.extract({"traceparent": traceparent})).get_span_context()
        if context.is_valid:
            links.append(Link(context))
    return links


@contextlib.contextmanager
def batch_span(name: str, stream: str, traceparents: Sequence[str], kind: SpanKind) -> Iterator[None]:
    """A span for a batch of events on `stream`, linked to each event's trace."""
    if not tracing.enabled():
        yield
        return
    attributes: dict[str, str | int] = {
        "messaging.system": "redis",
        "messaging.destination.name": stream,
        "messaging.batch.message_count": len(traceparents),
    }
    with TRACER.start_as_current_span(
        name, kind=kind, links=_links([t for t in traceparents if t]), attributes=attributes
    ):
        yield


def mark_applied(stream: str, events: Sequence[tuple[str, str, str]]) -> None:
    """A child span in each event's trace saying the cart applied it: (traceparent, event
    type, stream id), linked to the current (batch) span."""
    if not tracing.enabled():
        return
    batch = trace.get_current_span().get_span_context()
    for traceparent, type_, message_id in events:
        if not traceparent:
            continue
        parent = propagate.extract({"traceparent": traceparent})
        span = TRACER.start_span(
            "catalog event applied",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=[Link(batch)] if batch.is_valid else [],
            attributes={
                "messaging.system": "redis",
                "messaging.destination.name": stream,
                "messaging.message.id": message_id,
                "storefront.event.type": type_,
            },
        )
        span.end()
