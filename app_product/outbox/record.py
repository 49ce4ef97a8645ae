"""The transactional outbox: a catalog change and its events commit together, or neither does.

Service functions call `record` inside the transaction that makes the change; the relay
(app_product/relay.py) later sends the rows to the Redis stream. So an event exists exactly
when its change committed: none is lost if Redis is down or the process dies after the commit,
and none describes a change that was rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence

from databases import Database

from app_product.outbox import repo
from shared.events.envelope import Event, encode
from shared.events.tracing import current_traceparent


async def record(db: Database, events: Sequence[Event]) -> None:
    """Insert `events`; call inside the transaction of the change they describe."""
    if not events:
        return
    traceparent = current_traceparent()  # the change's trace, for the relay to carry on
    await repo.insert_outbox(
        db,
        [
            {
                "event_id": event.id,
                "event_type": event.type,
                "aggregate_id": event.aggregate_id,
                "aggregate_version": event.version,
                "payload": encode(event).decode(),
                "occurred_at": event.occurred_at,
                "trace_context": traceparent,
            }
            for event in events
        ],
    )
