"""Every SQL statement on carts and their items (the cart page's read, the writes that lock a
cart and change its items). Wishlists, promo codes and snapshot refreshes have modules of their
own beside this one; idempotency keys are in shared.http.idempotency.

Statements go through `databases` with `:name` binds; the two hottest reads use
`shared.storage.postgres.fetch_fast` (asyncpg, `$n` binds), which skips databases' per-call
compilation, and take either the `Database` (a write's transaction) or the `ReadPool` (a page
that only reads). Inside a service-level `db.transaction()` these run on that transaction's
connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from databases import Database

from shared.storage.postgres import ReadPool, fetch_fast

Row = Mapping[str, Any]


async def cart_rows(db: Database | ReadPool, user_id: str) -> list[Row]:
    """The user's cart in one query: a row per item (one row with null item columns for an
    empty cart, none if the user has no cart), each with the applied promo code, if any, and
    the database's clock (promo validity is judged by it, not by the app servers' clocks).
    Read on every page a shopper opens, hence `fetch_fast`."""
    return await fetch_fast(
        db,
        # Only what the view reads: decoding 20 rows is part of every cart page's cost.
        "SELECT now() AS now,"
        " i.product_id, i.quantity, i.product_name, i.category_name, i.price_when_added,"
        " i.current_price, i.is_available,"
        " p.code, p.kind, p.amount, p.min_subtotal, p.valid_from, p.valid_until,"
        " p.is_active AS promo_is_active"
        " FROM carts c"
        " LEFT JOIN cart_items i ON i.cart_id = c.id"
        " LEFT JOIN cart_promo_codes cp ON cp.cart_id = c.id"
        " LEFT JOIN promo_codes p ON p.id = cp.promo_code_id"
        " WHERE c.user_id = $1"
        " ORDER BY i.added_at, i.product_id",
        user_id,
    )


async def lock_cart(db: Database, user_id: str) -> int:
    """The user's cart id, creating the cart on first use, with its row locked until the
    transaction ends: every write to one cart takes this lock first, so writes to one cart
    happen one at a time (two tabs cannot interleave a check and a change)."""
    cart_id = await db.fetch_val(
        "INSERT INTO carts (user_id) VALUES (:user_id)"
        " ON CONFLICT (user_id) DO UPDATE SET updated_at = now()"
        " RETURNING id",
        {"user_id": user_id},
    )
    return int(cart_id)


async def find_cart_id(db: Database, user_id: str) -> int | None:
    cart_id = await db.fetch_val("SELECT id FROM carts WHERE user_id = :user_id", {"user_id": user_id})
    return None if cart_id is None else int(cart_id)


async def item_count(db: Database, cart_id: int) -> int:
    return int(await db.fetch_val("SELECT count(*) FROM cart_items WHERE cart_id = :id", {"id": cart_id}))


async def item_quantity(db: Database, cart_id: int, product_id: int) -> int | None:
    quantity = await db.fetch_val(
        "SELECT quantity FROM cart_items WHERE cart_id = :cart_id AND product_id = :product_id",
        {"cart_id": cart_id, "product_id": product_id},
    )
    return None if quantity is None else int(quantity)


# A shopper's write brings the product as the catalog answered it (with its version); the worker
# may have stored a newer one meanwhile (a price change, a deletion). The item keeps the newer
# snapshot, as the worker's own UPDATEs do, so an older answer cannot roll it back.
_FROM_EXCLUDED = {
    "product_name": "EXCLUDED.product_name",
    "category_name": "EXCLUDED.category_name",
    "category_id": "EXCLUDED.category_id",
    "current_price": "EXCLUDED.current_price",
    "is_available": "EXCLUDED.is_available",
}
_FROM_BINDS = {
    "product_name": ":name",
    "category_name": ":category_name",
    "category_id": ":category_id",
    "current_price": ":price",
    "is_available": ":is_available",
}


def _snapshot_unless_older(version: str, values: Mapping[str, str]) -> str:
    """SET clauses of a cart item's snapshot: `values` if `version` is not older than the
    row's, else the row's own; the version becomes the newer of the two."""
    newer = f"cart_items.product_version <= {version}"
    assignments = [
        f"{column} = CASE WHEN {newer} THEN {value} ELSE cart_items.{column} END"
        for column, value in values.items()
    ]
    return ", ".join([*assignments, f"product_version = GREATEST(cart_items.product_version, {version})"])


async def add_item(
    db: Database, cart_id: int, snapshot: Mapping[str, Any], quantity: int, limit: int
) -> int | None:
    """Add `quantity` of a product (to what is there) if the result stays within `limit`;
    the new quantity, or None if it would pass the limit. One statement: two concurrent adds
    of one product sum, whichever comes first."""
    row = await db.fetch_one(
        "INSERT INTO cart_items (cart_id, product_id, quantity, product_name, category_name, category_id,"
        " price_when_added, current_price, is_available, product_version)"
        " VALUES (:cart_id, :product_id, :quantity, :name, :category_name, :category_id, :price, :price,"
        " :is_available, :version)"
        " ON CONFLICT (cart_id, product_id) DO UPDATE SET"
        " quantity = cart_items.quantity + EXCLUDED.quantity, "
        + _snapshot_unless_older("EXCLUDED.product_version", _FROM_EXCLUDED)
        + ", updated_at = now() WHERE cart_items.quantity + EXCLUDED.quantity <= :limit"
        " RETURNING quantity",
        {"cart_id": cart_id, "quantity": quantity, "limit": limit, **snapshot},
    )
    return None if row is None else int(row._mapping["quantity"])


async def set_quantity(
    db: Database, cart_id: int, product_id: int, quantity: int, snapshot: Mapping[str, Any]
) -> bool:
    row = await db.fetch_one(
        "UPDATE cart_items SET quantity = :quantity, "
        + _snapshot_unless_older(":version", _FROM_BINDS)
        + ", updated_at = now() WHERE cart_id = :cart_id AND product_id = :product_id RETURNING 1",
        {"cart_id": cart_id, "product_id": product_id, "quantity": quantity, **snapshot},
    )
    return row is not None


async def reduce_quantity(db: Database, cart_id: int, product_id: int, quantity: int) -> bool:
    """Lower an item's quantity; needs no catalog data (a shopper may always take less)."""
    row = await db.fetch_one(
        "UPDATE cart_items SET quantity = :quantity, updated_at = now()"
        " WHERE cart_id = :cart_id AND product_id = :product_id RETURNING 1",
        {"cart_id": cart_id, "product_id": product_id, "quantity": quantity},
    )
    return row is not None


async def remove_item(db: Database, cart_id: int, product_id: int) -> bool:
    row = await db.fetch_one(
        "DELETE FROM cart_items WHERE cart_id = :cart_id AND product_id = :product_id RETURNING 1",
        {"cart_id": cart_id, "product_id": product_id},
    )
    return row is not None


async def delete_cart(db: Database, cart_id: int) -> None:
    await db.execute("DELETE FROM carts WHERE id = :id", {"id": cart_id})
