"""The cart API's request bodies and query strings (validated by msgspec); the views it answers
with are the services' (`app_cart.services.models`).

No body carries a user id: the user always comes from the token, so unknown fields (a
`user_id` among them) are refused. Money travels as decimal strings.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from app_cart.services.models import PromoCode
from shared.errors import FieldError
from shared.events import seed
from shared.events.envelope import Event
from shared.http.json_io import field_error
from shared.http.problems import InvalidBody
from shared.types import LINE_PATTERN, Body, Id, PageSize

T = TypeVar("T")

# The configured maximum (MAX_ITEM_QUANTITY, at most 999) is checked by the service.
Quantity = Annotated[int, Meta(ge=1, le=999)]


class AddItem(Body, kw_only=True):
    product_id: Id
    quantity: Quantity = 1


class SetQuantity(Body, kw_only=True):
    quantity: Quantity


class AddToWishlist(Body, kw_only=True):
    product_id: Id


class MoveToCart(Body, kw_only=True):
    quantity: Quantity = 1


class ApplyPromo(Body, kw_only=True):
    code: Annotated[str, Meta(min_length=1, max_length=64, pattern=LINE_PATTERN)]


class PromoQuery(Body, kw_only=True):
    limit: PageSize = 50
    cursor: str | None = None
    is_active: bool | None = None


class NoQuery(Body, kw_only=True):
    """Routes that take no query parameters refuse any (a `?user_id=` included)."""


class PromoPage(msgspec.Struct, kw_only=True):
    items: list[PromoCode]
    next_cursor: str | None


def incoming_event(body: dict[str, Any]) -> Event:
    """A body of `POST /internal/events` as our event: ours as it is, the seed's (told apart by
    its `event_type`) put into our envelope. A 422 naming both shapes if it is neither."""
    if "event_type" not in body:
        return _convert(body, Event, "a catalog event")
    seed_event = _convert(body, seed.SeedEvent, "the seed's event")
    try:
        return seed.from_seed(seed_event)
    except msgspec.ValidationError as exc:  # the payload of a type we know
        raise _neither(exc, "the seed's event", "payload.") from None


def _convert(body: dict[str, Any], type_: type[T], shape: str) -> T:
    try:
        return msgspec.convert(body, type_)
    except msgspec.ValidationError as exc:
        raise _neither(exc, shape) from None


def _neither(exc: msgspec.ValidationError, shape: str, prefix: str = "") -> InvalidBody:
    error = field_error(exc)
    field = prefix + error.field
    return InvalidBody(
        f"Send a catalog event {seed.OUR_SHAPE} or the seed's event {seed.SEED_SHAPE};"
        f" as {shape}, {field}: {error.message}",
        errors=[FieldError(field=field, message=error.message)],
    )
