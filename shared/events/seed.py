"""The seed's event envelope, still accepted at the cart's `POST /internal/events` beside ours.

The seed's product service sent `{"event_type": "category.updated", "payload": {"category_id":
2, "name": "Jackets", "is_active": true}, "timestamp": 1764600000.0}`, with no id or version,
and a `timestamp` from its event loop's clock (not a wall time: it orders nothing). So that a
producer still on that contract can run beside the new cart, such an event is put into our
envelope and appended to the same stream as every other, where workers apply it, retry it and
park it the same way; an operator sees it there as type `seed.<event_type>`:

- its id is derived from its content (a UUID 5 of the body, keys sorted): the same event posted
  twice has one id, so a retried POST is recognisable as a duplicate;
- its aggregate is the category (`payload.category_id`), its version 0: it carries none, so the
  cart takes one from the catalog when it applies it (see app_cart.worker.handlers);
- `data` holds the seed's body as it came, for the record and for operators;
- an `event_type` the cart has no handler for is accepted all the same: the worker fails it
  ("no handler") and parks it with its payload once its deliveries run out, not lost.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from shared.events.envelope import Event
from shared.types import Id

log = logging.getLogger(__name__)

SEED_PREFIX = "seed."
SEED_CATEGORY_UPDATED = SEED_PREFIX + "category.updated"
SEED_VERSION = 0  # the seed's events carry none
# Fixed, so that every process derives the same id from the same content.
_NAMESPACE = uuid.UUID("7f0cbb0e-3a4b-5d8e-9c1a-2f6b8e4d1c90")

OUR_SHAPE = "{id, type, aggregate_id, version, occurred_at, data?, changed?, schema_version?}"
SEED_SHAPE = "{event_type, payload, timestamp}"


class SeedEvent(msgspec.Struct, frozen=True):
    """As the seed's pydantic model read it: other fields are ignored, not refused."""

    event_type: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=100)]
    payload: dict[str, Any]
    timestamp: float


class SeedCategoryUpdated(msgspec.Struct, frozen=True):
    """The payload of the seed's `category.updated` (other fields are ignored)."""

    category_id: Id
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    is_active: bool


_encoder = msgspec.json.Encoder(order="sorted")


def content_id(seed: SeedEvent) -> uuid.UUID:
    """The same for the same event, whichever process receives it, and however often."""
    return uuid.uuid5(_NAMESPACE, _encoder.encode(seed).decode())


def from_seed(seed: SeedEvent, received_at: datetime | None = None) -> Event:
    """`seed` in our envelope. Raises msgspec.ValidationError if the payload of a type we know
    is not what the seed sent."""
    aggregate_id = 0  # a type we do not know: no aggregate we could name
    if SEED_PREFIX + seed.event_type == SEED_CATEGORY_UPDATED:
        aggregate_id = msgspec.convert(seed.payload, SeedCategoryUpdated).category_id
    else:
        log.warning(
            "seed event of type %r accepted, but the cart has no handler for it: the workers will"
            " park it, with its payload, after its retries",
            seed.event_type,
        )
    return Event(
        id=content_id(seed),
        type=SEED_PREFIX + seed.event_type,
        aggregate_id=aggregate_id,
        version=SEED_VERSION,
        occurred_at=received_at or datetime.now(UTC),
        data=msgspec.to_builtins(seed),
    )


def category_updated(event: Event) -> SeedCategoryUpdated:
    """The payload of a `seed.category.updated` event, as `from_seed` checked it."""
    return msgspec.convert((event.data or {})["payload"], SeedCategoryUpdated)
