"""Promo code rules: whether a code applies to a cart now, and the discount it gives.

A fixed discount never exceeds the subtotal, so a total is never negative. Whether a use is left
(`max_uses`) is not judged here: uses are taken atomically by the database (`promo_codes.take_use`),
which then asks `refusal` of the row it locked, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from app_cart.domain.pricing import cents
from shared.errors import ValidationFailed
from shared.types import described

CODE_PATTERN = described(r"^[A-Za-z0-9_-]{3,32}\Z", "must be 3 to 32 letters, digits, '_' or '-'")


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


_MESSAGES = {
    Refusal.UNKNOWN: "There is no such code.",
    Refusal.INACTIVE: "This code is no longer active.",
    Refusal.NOT_YET_VALID: "This code is not valid yet.",
    Refusal.EXPIRED: "This code has expired.",
    Refusal.BELOW_MINIMUM: "The cart is below this code's minimum subtotal.",
    Refusal.USED_UP: "This code has been used as many times as it may be.",
    Refusal.ALREADY_USED: "You have already used this code.",
}


class PromoRefused(ValidationFailed):
    """A code that cannot be applied, with why (`reason`) and which (`code`)."""

    def __init__(self, reason: Refusal, code: str, **extensions: Any) -> None:
        super().__init__(_MESSAGES[reason], reason=reason.value, code=code, **extensions)
        self.reason = reason
