"""Money and promo rules: the one place the cart computes amounts or decides whether a code applies.

Amounts are `Decimal`, rounded to cents half-up only where a fraction of a cent can appear (a
percentage). A fixed discount never exceeds the subtotal; a total is never negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class Refusal(StrEnum):
    """Why a promo code does not apply; the values are what clients see."""

    UNKNOWN = "unknown"
    INACTIVE = "inactive"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    BELOW_MINIMUM = "below_minimum"
    USED_UP = "used_up"
    ALREADY_USED = "already_used"


@dataclass(frozen=True)
class PromoTerms:
    """What decides a code's discount and whether it applies now."""

    code: str
    kind: str  # "percent" or "fixed"
    amount: Decimal
    min_subtotal: Decimal
    valid_from: datetime | None
    valid_until: datetime | None
    is_active: bool


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_total(unit_price: Decimal, quantity: int) -> Decimal:
    return (unit_price * quantity).quantize(CENT, rounding=ROUND_HALF_UP)  # cents(), inlined: hot


def refusal(terms: PromoTerms, now: datetime, subtotal: Decimal) -> Refusal | None:
    """Why `terms` do not apply to a cart of `subtotal` at `now`; None if they do.
    (Use limits are checked where uses are taken, atomically, not here.)"""
    if not terms.is_active:
        return Refusal.INACTIVE
    if terms.valid_from is not None and now < terms.valid_from:
        return Refusal.NOT_YET_VALID
    if terms.valid_until is not None and now >= terms.valid_until:
        return Refusal.EXPIRED
    if subtotal < terms.min_subtotal:
        return Refusal.BELOW_MINIMUM
    return None


def discount(terms: PromoTerms, subtotal: Decimal) -> Decimal:
    if terms.kind == "percent":
        return min(cents(subtotal * terms.amount / 100), subtotal)
    return min(terms.amount, subtotal)
