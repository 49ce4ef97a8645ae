"""Catalog events: the message both services agree on (msgspec JSON on the wire).

An event says what changed in the catalog: its id (a UUID: consumers use it to spot
duplicates), its type (`product.created`, `product.updated`, `product.deleted`, and the same for
`category`), the aggregate's id and its version after the change (consumers apply an event only
if it is newer than what they hold, so duplicates and replays change nothing), when it
happened, the schema version of this envelope, the new state (null after a delete) and the
fields that changed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

SCHEMA_VERSION = 1

PRODUCT_CREATED = "product.created"
PRODUCT_UPDATED = "product.updated"
PRODUCT_DELETED = "product.deleted"
CATEGORY_CREATED = "category.created"
CATEGORY_UPDATED = "category.updated"
CATEGORY_DELETED = "category.deleted"


class Event(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    type: str
    aggregate_id: int
    version: int
    occurred_at: datetime
    schema_version: int = SCHEMA_VERSION
    data: dict[str, Any] | None = None
    changed: list[str] = []


def new_event(
    type_: str,
    aggregate_id: int,
    version: int,
    data: msgspec.Struct | dict[str, Any] | None,
    changed: list[str] | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    return Event(
        id=uuid.uuid4(),
        type=type_,
        aggregate_id=aggregate_id,
        version=version,
        occurred_at=occurred_at or datetime.now(UTC),
        data=None if data is None else msgspec.to_builtins(data),
        changed=sorted(changed or []),
    )


# A stream entry's fields, in order: what an operator reads at a glance, the JSON, and the W3C
# traceparent of the change that made the event ("" when it was not traced).
ENTRY_FIELDS = ("type", "aggregate_id", "version", "event_id", "event", "traceparent")


def stream_fields(
    event_id: str,
    type_: str,
    aggregate_id: int,
    version: int,
    event_json: str,
    traceparent: str | None = None,
) -> dict[Any, Any]:  # Any: what redis-py's xadd signature accepts (an invariant dict of unions)
    """An event as a stream entry: the JSON, and beside it what an operator reads at a glance."""
    values = (type_, aggregate_id, version, event_id, event_json, traceparent or "")
    return dict(zip(ENTRY_FIELDS, values, strict=True))


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(raw: bytes | str) -> Event:
    return _decoder.decode(raw)
