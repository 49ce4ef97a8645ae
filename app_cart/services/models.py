"""What the cart's services take and give: promo code commands (validated by msgspec before a
service sees them) and the views a shopper or an admin reads. Money travels as decimal strings.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from app_cart.domain.promo import CODE_PATTERN
from shared.types import AwareDatetime, Body, Money, Version

Code = Annotated[str, Meta(pattern=CODE_PATTERN)]
MaxUses = Annotated[int, Meta(ge=1, le=2**31 - 1)]


class PromoCreate(Body, kw_only=True):
    code: Code
    kind: Literal["percent", "fixed"]
    amount: Money
    min_subtotal: Money = "0"
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    max_uses: MaxUses | None = None
    once_per_user: bool = False
    is_active: bool = True


class PromoPatch(Body, kw_only=True):
    code: Code | UnsetType = UNSET
    kind: Literal["percent", "fixed"] | UnsetType = UNSET
    amount: Money | UnsetType = UNSET
    min_subtotal: Money | UnsetType = UNSET
    valid_from: AwareDatetime | UnsetType | None = UNSET
    valid_until: AwareDatetime | UnsetType | None = UNSET
    max_uses: MaxUses | UnsetType | None = UNSET
    once_per_user: bool | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET
    version: Version | None = None


class CartItemView(msgspec.Struct, kw_only=True):
    product_id: int
    name: str
    category_name: str | None
    quantity: int
    unit_price: Decimal
    price_when_added: Decimal
    price_changed: bool
    available: bool
    # deleted, inactive, out_of_stock or insufficient_stock when not available; "unavailable" when
    # neither catalog nor cache can say and the item's snapshot says it cannot be bought
    unavailable_reason: str | None
    line_total: Decimal
    # True when the catalog could not be reached and this is the last data the cart saw.
    stale: bool


class PromoView(msgspec.Struct, kw_only=True):
    code: str
    kind: str
    amount: Decimal
    min_subtotal: Decimal
    applies: bool
    # Why it gives no discount now (a code that stops qualifying is reported, not dropped).
    reason: str | None
    discount: Decimal


class CartView(msgspec.Struct, kw_only=True):
    items: list[CartItemView]
    item_count: int
    subtotal: Decimal
    discount: Decimal
    total: Decimal
    promo: PromoView | None
    stale: bool


class WishlistItemView(msgspec.Struct, kw_only=True):
    product_id: int
    name: str
    category_name: str | None
    price: Decimal
    price_when_added: Decimal
    price_changed: bool
    available: bool
    unavailable_reason: str | None
    added_at: datetime
    stale: bool


class WishlistView(msgspec.Struct, kw_only=True):
    items: list[WishlistItemView]


class PromoCode(msgspec.Struct, kw_only=True):
    id: int
    code: str
    kind: str
    amount: Decimal
    min_subtotal: Decimal
    valid_from: datetime | None
    valid_until: datetime | None
    max_uses: int | None
    uses: int
    once_per_user: bool
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime
