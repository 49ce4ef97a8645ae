"""Promo codes, as admins manage them: create, list, read, update, deactivate.

Codes are stored upper case and never deleted (carts and redemptions refer to them):
deactivating keeps the row. The rules that span fields (a percentage is at most 100, the
window opens before it closes, `max_uses` is not below the uses taken) are CHECK constraints,
so a concurrent change cannot slip past them; their violations become 422s naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
from databases import Database

from app_cart.adapters import promo_codes as repo
from app_cart.services.models import PromoCode, PromoCreate, PromoPatch
from shared.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from shared.http.versioning import ExpectedVersion
from shared.types import set_fields

_CHECKS = {
    "promo_codes_amount_check": ("amount", "must be more than 0"),
    "promo_codes_percent_range": ("amount", "a percentage is at most 100"),
    "promo_codes_window": ("valid_until", "must be later than valid_from"),
    "promo_codes_uses_within_limit": ("max_uses", "is below the uses already taken"),
}


def _values(fields: dict[str, Any]) -> dict[str, Any]:
    """Wire values to column values: codes upper case, money as Decimal."""
    values = dict(fields)
    if "code" in values:
        values["code"] = values["code"].upper()
    for money in ("amount", "min_subtotal"):
        if money in values:
            values[money] = Decimal(values[money])
    return values


def _translate(exc: asyncpg.IntegrityConstraintViolationError, code: str | None) -> Exception:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict(f"A promo code {code!r} already exists.")
    field, message = _CHECKS.get(exc.constraint_name or "", ("(body)", "breaks a promo code rule"))
    return invalid(field, message)


async def create(db: Database, body: PromoCreate) -> PromoCode:
    values = _values(set_fields(body))
    try:
        row = await repo.insert_promo(db, values)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _translate(exc, values["code"]) from None
    return PromoCode(**row)


async def get(db: Database, promo_id: int) -> PromoCode:
    row = await repo.fetch_promo(db, promo_id)
    if row is None:
        raise NotFound(f"No promo code has id {promo_id}.")
    return PromoCode(**row)


async def list_page(
    db: Database, after: int, limit: int, is_active: bool | None
) -> tuple[list[PromoCode], bool]:
    """Codes with id > `after`, in id order; and whether more follow."""
    rows = await repo.list_promos(db, after, limit + 1, is_active)
    return [PromoCode(**row) for row in rows[:limit]], len(rows) > limit


async def update(db: Database, promo_id: int, patch: PromoPatch, expected: ExpectedVersion) -> PromoCode:
    changed = _values(set_fields(patch))
    if not changed:
        raise ValidationFailed(
            "The body sets no field.", errors=[FieldError(field="(body)", message="no field to change")]
        )
    try:
        row = await repo.update_promo(db, promo_id, expected.value, changed)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise _translate(exc, changed.get("code")) from None
    if row is None:
        current = await repo.fetch_promo(db, promo_id)
        if current is None:
            raise NotFound(f"No promo code has id {promo_id}.")
        raise expected.stale(current["version"])
    return PromoCode(**row)


async def deactivate(db: Database, promo_id: int) -> None:
    """Switch the code off (carts holding it report it as inactive). Repeatable."""
    if not await repo.deactivate_promo(db, promo_id):
        raise NotFound(f"No promo code has id {promo_id}.")
