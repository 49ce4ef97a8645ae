"""Whether a product can be bought, or kept on a wishlist: the one place the rule is written.

The worker's snapshots (`is_available`), the cart's views (`unavailable_reason`) and every
write's checks all ask here, so they cannot disagree.
"""

from __future__ import annotations

from typing import Protocol


class Stocked(Protocol):
    @property
    def is_active(self) -> bool: ...
    @property
    def stock(self) -> int: ...


# Reasons a client sees; the first two also keep a product off a wishlist.
DELETED, INACTIVE, OUT_OF_STOCK, INSUFFICIENT_STOCK = (
    "deleted",
    "inactive",
    "out_of_stock",
    "insufficient_stock",
)


def unavailable_reason(product: Stocked | None, quantity: int = 1) -> str | None:
    """Why `quantity` of `product` (None: it no longer exists) cannot be bought now; None if it can."""
    if product is None:
        return DELETED
    if not product.is_active:
        return INACTIVE
    if product.stock <= 0:
        return OUT_OF_STOCK
    if product.stock < quantity:
        return INSUFFICIENT_STOCK
    return None


def is_available(product: Stocked | None) -> bool:
    """Whether one of `product` can be bought now (what an item's snapshot records)."""
    return unavailable_reason(product) is None


def wishlist_refusal(product: Stocked | None) -> str | None:
    """Why `product` cannot go on a wishlist (it is gone or not for sale); None if it can.
    Out of stock is no reason: a shopper may wait for it."""
    reason = unavailable_reason(product)
    return reason if reason in (DELETED, INACTIVE) else None
