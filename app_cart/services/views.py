"""What a shopper sees: cart and wishlist rows joined with the products' current state.

With current catalog data an item shows the current price and whether it can be bought now.
When the catalog cannot be reached it shows the last data known, marked `stale`: the cache's
expired entry, or else the snapshot the item row keeps. So the cart still opens. Unavailable
items stay listed (and in `item_count`) but count in no money total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from app_cart.domain import pricing, promo
from app_cart.domain.availability import DELETED, unavailable_reason
from app_cart.services.models import CartItemView, CartView, PromoView, WishlistItemView, WishlistView
from shared.resilience.cache_entries import Lookup

Row = Mapping[str, Any]


class _Current(NamedTuple):
    name: str
    category_name: str | None
    price: Decimal
    unavailable_reason: str | None
    stale: bool


def _current(row: Row, lookup: Lookup, quantity: int) -> _Current:
    """The product as the catalog has it now, or as last known if the catalog cannot say."""
    product_id = row["product_id"]
    product = lookup.found.get(product_id)
    if product is not None:  # the common case first: this runs for every item of every page
        reason, stale = unavailable_reason(product, quantity), product_id in lookup.stale
        return _Current(product.name, product.category_name, product.price, reason, stale)
    if product_id in lookup.unknown:  # neither catalog nor cache could say: the row's snapshot
        reason = None if row["is_available"] else "unavailable"
        return _Current(row["product_name"], row["category_name"], row["current_price"], reason, True)
    return _Current(row["product_name"], row["category_name"], row["current_price"], DELETED, False)


def _cart_item(row: Row, lookup: Lookup) -> CartItemView:
    quantity = row["quantity"]
    now = _current(row, lookup, quantity)
    return CartItemView(
        product_id=row["product_id"],
        name=now.name,
        category_name=now.category_name,
        quantity=quantity,
        unit_price=now.price,
        price_when_added=row["price_when_added"],
        price_changed=now.price != row["price_when_added"],
        available=now.unavailable_reason is None,
        unavailable_reason=now.unavailable_reason,
        line_total=pricing.line_total(now.price, quantity),
        stale=now.stale,
    )


def promo_terms(row: Row, *, is_active: bool) -> promo.PromoTerms:
    """The terms in a promo_codes row (or a cart row joined with one)."""
    return promo.PromoTerms(
        code=row["code"],
        kind=row["kind"],
        amount=row["amount"],
        min_subtotal=row["min_subtotal"],
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        is_active=is_active,
    )


def _promo(row: Row, now: datetime, subtotal: Decimal) -> PromoView:
    terms = promo_terms(row, is_active=row["promo_is_active"])
    refusal = promo.refusal(terms, now, subtotal)
    return PromoView(
        code=terms.code,
        kind=terms.kind,
        amount=terms.amount,
        min_subtotal=terms.min_subtotal,
        applies=refusal is None,
        reason=None if refusal is None else refusal.value,
        discount=pricing.ZERO if refusal is not None else promo.discount(terms, subtotal),
    )


def cart_view(rows: Sequence[Row], lookup: Lookup) -> CartView:
    """`rows` from repo.cart_rows; `lookup` what the catalog (or its cache) says of their products."""
    items = [_cart_item(row, lookup) for row in rows if row["product_id"] is not None]
    subtotal = sum((item.line_total for item in items if item.available), pricing.ZERO)
    applied = _promo(rows[0], rows[0]["now"], subtotal) if rows and rows[0]["code"] is not None else None
    discount = applied.discount if applied is not None else pricing.ZERO
    return CartView(
        items=items,
        item_count=sum(item.quantity for item in items),
        subtotal=subtotal,
        discount=discount,
        total=subtotal - discount,
        promo=applied,
        stale=any(item.stale for item in items),
    )


def wishlist_view(rows: Sequence[Row], lookup: Lookup) -> WishlistView:
    items = []
    for row in rows:
        now = _current(row, lookup, quantity=1)
        items.append(
            WishlistItemView(
                product_id=row["product_id"],
                name=now.name,
                category_name=now.category_name,
                price=now.price,
                price_when_added=row["price_when_added"],
                price_changed=now.price != row["price_when_added"],
                available=now.unavailable_reason is None,
                unavailable_reason=now.unavailable_reason,
                added_at=row["added_at"],
                stale=now.stale,
            )
        )
    return WishlistView(items=items)
