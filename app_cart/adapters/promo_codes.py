"""Every SQL statement on promo codes, their redemptions and the code a cart holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from databases import Database

from app_cart.adapters.carts import Row
from shared.storage.postgres import compare_and_set, inserted

PROMO_COLUMNS = (
    "id, code, kind, amount, min_subtotal, valid_from, valid_until, max_uses, uses, once_per_user,"
    " is_active, version, created_at, updated_at"
)
PROMO_MUTABLE = frozenset(
    {
        "code",
        "kind",
        "amount",
        "min_subtotal",
        "valid_from",
        "valid_until",
        "max_uses",
        "once_per_user",
        "is_active",
    }
)


def _mapping(row: Any) -> Row | None:
    return None if row is None else row._mapping


async def insert_promo(db: Database, values: Mapping[str, Any]) -> Row:
    row = await db.fetch_one(
        "INSERT INTO promo_codes (code, kind, amount, min_subtotal, valid_from, valid_until,"
        " max_uses, once_per_user, is_active)"
        " VALUES (:code, :kind, :amount, :min_subtotal, :valid_from, :valid_until,"
        " :max_uses, :once_per_user, :is_active)"
        f" RETURNING {PROMO_COLUMNS}",
        dict(values),
    )
    return inserted(row)


async def fetch_promo(db: Database, promo_id: int) -> Row | None:
    return _mapping(
        await db.fetch_one(f"SELECT {PROMO_COLUMNS} FROM promo_codes WHERE id = :id", {"id": promo_id})
    )


async def promo_by_code(db: Database, code: str) -> Row | None:
    """The code's row and the database's clock, for judging validity."""
    row = await db.fetch_one(
        f"SELECT {PROMO_COLUMNS}, now() AS now FROM promo_codes WHERE code = :code", {"code": code}
    )
    return _mapping(row)


async def list_promos(db: Database, after: int, limit: int, is_active: bool | None) -> list[Row]:
    rows = await db.fetch_all(
        f"SELECT {PROMO_COLUMNS} FROM promo_codes WHERE id > :after"
        " AND (CAST(:is_active AS boolean) IS NULL OR is_active = :is_active)"
        " ORDER BY id LIMIT :limit",
        {"after": after, "limit": limit, "is_active": is_active},
    )
    return [row._mapping for row in rows]


async def update_promo(db: Database, promo_id: int, version: int, changes: Mapping[str, Any]) -> Row | None:
    """Compare-and-set on `version`; None if absent or stale."""
    return await compare_and_set(db, "promo_codes", PROMO_COLUMNS, PROMO_MUTABLE, promo_id, version, changes)


async def deactivate_promo(db: Database, promo_id: int) -> bool:
    """Switch a code off whatever its version; False if there is no such code."""
    row = await db.fetch_one(
        "UPDATE promo_codes SET is_active = false,"
        " version = version + CASE WHEN is_active THEN 1 ELSE 0 END,"
        " updated_at = CASE WHEN is_active THEN now() ELSE updated_at END"
        " WHERE id = :id RETURNING 1",
        {"id": promo_id},
    )
    return row is not None


async def applied_promo_id(db: Database, cart_id: int) -> int | None:
    promo_id = await db.fetch_val(
        "SELECT promo_code_id FROM cart_promo_codes WHERE cart_id = :cart_id", {"cart_id": cart_id}
    )
    return None if promo_id is None else int(promo_id)


async def take_use(db: Database, promo_id: int) -> Row | None:
    """Take one use if one is left; the code's row as it is now (locked until the transaction
    ends) with the database's clock, or None if no use is left. The caller judges the row's
    other terms (`domain.promo.refusal`) and rolls back if they refuse it.

    The row lock of this UPDATE is the race guard: of 50 transactions after the last use,
    the first to lock increments; each other one waits, re-reads the committed row, finds
    `uses < max_uses` false, and updates nothing.
    """
    row = await db.fetch_one(
        f"UPDATE promo_codes SET uses = uses + 1 WHERE id = :id AND (max_uses IS NULL OR uses < max_uses)"
        f" RETURNING {PROMO_COLUMNS}, now() AS now",
        {"id": promo_id},
    )
    return _mapping(row)


async def release_use(db: Database, promo_id: int) -> None:
    await db.execute("UPDATE promo_codes SET uses = uses - 1 WHERE id = :id AND uses > 0", {"id": promo_id})


async def redeem(db: Database, promo_id: int, user_id: str) -> bool:
    """Record that the user applied the code; False if they already had."""
    row = await db.fetch_one(
        "INSERT INTO promo_redemptions (promo_code_id, user_id) VALUES (:promo_id, :user_id)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        {"promo_id": promo_id, "user_id": user_id},
    )
    return row is not None


async def set_cart_promo(db: Database, cart_id: int, promo_id: int) -> None:
    await db.execute(
        "INSERT INTO cart_promo_codes (cart_id, promo_code_id) VALUES (:cart_id, :promo_id)"
        " ON CONFLICT (cart_id) DO UPDATE SET promo_code_id = EXCLUDED.promo_code_id, applied_at = now()",
        {"cart_id": cart_id, "promo_id": promo_id},
    )


async def clear_cart_promo(db: Database, cart_id: int) -> int | None:
    """Remove the cart's code; the id of the code removed, if there was one."""
    promo_id = await db.fetch_val(
        "DELETE FROM cart_promo_codes WHERE cart_id = :cart_id RETURNING promo_code_id", {"cart_id": cart_id}
    )
    return None if promo_id is None else int(promo_id)
