"""The cart API's request bodies and query strings (validated by msgspec); the views it answers
with are the services' (`app_cart.services.models`).

No body carries a user id: the user always comes from the token, so unknown fields (a
`user_id` among them) are refused. Money travels as decimal strings.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from app_cart.services.models import PromoCode
from shared.types import LINE_PATTERN, Body, Id, PageSize

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
