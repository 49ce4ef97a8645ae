"""What a shopper sees: cart and wishlist rows joined with the products' current state.

With current catalog data an item shows the current price and whether it can be bought now.
Without it (the catalog cannot be reached) it shows the last data the cart saw, marked
`stale`, so the cart still opens. Unavailable items stay listed but count in no total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from app_cart import pricing
from app_cart.products import CatalogProduct
from app_cart.schemas import CartItemView, CartView, PromoView, WishlistItemView, WishlistView

Row = Mapping[str, Any]
Products = Mapping[int, CatalogProduct]


def unavailable_reason(product: CatalogProduct | None, quantity: int) -> str | None:
    """Why `quantity` of `product` cannot be bought now; None if it can."""
    if product is None:
        return "deleted"
    if not product.is_active:
        return "inactive"
    if product.stock <= 0:
        return "out_of_stock"
    if product.stock < quantity:
        return "insufficient_stock"
    return None


def _current(
    row: Row, products: Products | None, quantity: int
) -> tuple[str, str | None, Decimal, str | None]:
    """(name, category name, unit price, unavailable reason) now, or as last seen if stale."""
    if products is None:
        reason = None if row["is_available"] else "unavailable"
        return row["product_name"], row["category_name"], row["current_price"], reason
    product = products.get(row["product_id"])
    if product is None:
        return row["product_name"], row["category_name"], row["current_price"], "deleted"
    return product.name, product.category_name, product.price, unavailable_reason(product, quantity)


def _cart_item(row: Row, products: Products | None) -> CartItemView:
    quantity = row["quantity"]
    name, category_name, price, reason = _current(row, products, quantity)
    return CartItemView(
        product_id=row["product_id"],
        name=name,
        category_name=category_name,
        quantity=quantity,
        unit_price=price,
        price_when_added=row["price_when_added"],
        price_changed=price != row["price_when_added"],
        available=reason is None,
        unavailable_reason=reason,
        line_total=pricing.line_total(price, quantity),
        stale=products is None,
    )


def promo_terms(row: Row, *, is_active: bool) -> pricing.PromoTerms:
    """The terms in a promo_codes row (or a cart row joined with one)."""
    return pricing.PromoTerms(
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
    refusal = pricing.refusal(terms, now, subtotal)
    return PromoView(
        code=terms.code,
        kind=terms.kind,
        amount=terms.amount,
        min_subtotal=terms.min_subtotal,
        applies=refusal is None,
        reason=None if refusal is None else refusal.value,
        discount=pricing.ZERO if refusal is not None else pricing.discount(terms, subtotal),
    )


def cart_view(rows: Sequence[Row], products: Products | None) -> CartView:
    """`rows` from repo.cart_rows; `products` the catalog's current data, None if unreachable."""
    items = [_cart_item(row, products) for row in rows if row["product_id"] is not None]
    subtotal = sum((item.line_total for item in items if item.available), pricing.ZERO)
    promo = _promo(rows[0], rows[0]["now"], subtotal) if rows and rows[0]["code"] is not None else None
    discount = promo.discount if promo is not None else pricing.ZERO
    return CartView(
        items=items,
        item_count=sum(item.quantity for item in items),
        subtotal=subtotal,
        discount=discount,
        total=subtotal - discount,
        promo=promo,
        stale=products is None,
    )


def wishlist_view(rows: Sequence[Row], products: Products | None) -> WishlistView:
    items = []
    for row in rows:
        name, category_name, price, reason = _current(row, products, quantity=1)
        items.append(
            WishlistItemView(
                product_id=row["product_id"],
                name=name,
                category_name=category_name,
                price=price,
                price_when_added=row["price_when_added"],
                price_changed=price != row["price_when_added"],
                available=reason is None,
                unavailable_reason=reason,
                added_at=row["added_at"],
                stale=products is None,
            )
        )
    return WishlistView(items=items)
