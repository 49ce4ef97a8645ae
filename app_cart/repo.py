"""Every SQL statement of the cart service (but for idempotency keys, in shared.idempotency).

Statements go through `databases` with `:name` binds; the two hottest reads use
`shared.db.fetch_fast` (asyncpg, `$n` binds), which skips databases' per-call compilation, and
take either the `Database` (a write's transaction) or the `ReadPool` (a page that only reads).

Inside a service-level `db.transaction()` these run on that transaction's connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from databases import Database

from shared.db import ReadPool, compare_and_set, fetch_fast

Row = Mapping[str, Any]

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


# Carts ----------------------------------------------------------------------------------------


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
    "current_price": "EXCLUDED.current_price",
    "is_available": "true",  # the catalog just said it can be bought
}
_FROM_BINDS = {
    "product_name": ":name",
    "category_name": ":category_name",
    "current_price": ":price",
    "is_available": "true",
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
        "INSERT INTO cart_items (cart_id, product_id, quantity, product_name, category_name,"
        " price_when_added, current_price, is_available, product_version)"
        " VALUES (:cart_id, :product_id, :quantity, :name, :category_name, :price, :price, true, :version)"
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


# Wishlists ------------------------------------------------------------------------------------


async def wishlist_rows(db: Database | ReadPool, user_id: str) -> list[Row]:
    return await fetch_fast(
        db,
        "SELECT i.product_id, i.product_name, i.category_name, i.price_when_added, i.current_price,"
        " i.is_available, i.added_at"
        " FROM wishlists w JOIN wishlist_items i ON i.wishlist_id = w.id"
        " WHERE w.user_id = $1 ORDER BY i.added_at, i.product_id",
        user_id,
    )


async def lock_wishlist(db: Database, user_id: str) -> int:
    """As `lock_cart`, for the wishlist."""
    wishlist_id = await db.fetch_val(
        "INSERT INTO wishlists (user_id) VALUES (:user_id)"
        " ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id RETURNING id",
        {"user_id": user_id},
    )
    return int(wishlist_id)


async def wishlist_size(db: Database, wishlist_id: int) -> int:
    return int(
        await db.fetch_val("SELECT count(*) FROM wishlist_items WHERE wishlist_id = :id", {"id": wishlist_id})
    )


async def add_wishlist_item(db: Database, wishlist_id: int, snapshot: Mapping[str, Any]) -> bool:
    """True if added, False if it was already there (adding twice is not an error)."""
    row = await db.fetch_one(
        "INSERT INTO wishlist_items (wishlist_id, product_id, product_name, category_name,"
        " price_when_added, current_price, is_available, product_version)"
        " VALUES (:wishlist_id, :product_id, :name, :category_name, :price, :price, true, :version)"
        " ON CONFLICT (wishlist_id, product_id) DO NOTHING RETURNING 1",
        {"wishlist_id": wishlist_id, **snapshot},
    )
    return row is not None


async def remove_wishlist_item(db: Database, user_id: str, product_id: int) -> bool:
    row = await db.fetch_one(
        "DELETE FROM wishlist_items i USING wishlists w"
        " WHERE i.wishlist_id = w.id AND w.user_id = :user_id AND i.product_id = :product_id RETURNING 1",
        {"user_id": user_id, "product_id": product_id},
    )
    return row is not None


# Promo codes ----------------------------------------------------------------------------------


async def insert_promo(db: Database, values: Mapping[str, Any]) -> Row:
    row = await db.fetch_one(
        "INSERT INTO promo_codes (code, kind, amount, min_subtotal, valid_from, valid_until,"
        " max_uses, once_per_user, is_active)"
        " VALUES (:code, :kind, :amount, :min_subtotal, :valid_from, :valid_until,"
        " :max_uses, :once_per_user, :is_active)"
        f" RETURNING {PROMO_COLUMNS}",
        dict(values),
    )
    assert row is not None
    return row._mapping


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


async def take_use(db: Database, promo_id: int) -> bool:
    """Take one use if one is left and the code is usable now; False otherwise.

    The row lock of this UPDATE is the race guard: of 50 transactions after the last use,
    the first to lock increments; each other one waits, re-reads the committed row, finds
    `uses < max_uses` false, and updates nothing.
    """
    row = await db.fetch_one(
        "UPDATE promo_codes SET uses = uses + 1"
        " WHERE id = :id AND is_active"
        " AND (valid_from IS NULL OR valid_from <= now()) AND (valid_until IS NULL OR now() < valid_until)"
        " AND (max_uses IS NULL OR uses < max_uses)"
        " RETURNING 1",
        {"id": promo_id},
    )
    return row is not None


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


# Catalog events -------------------------------------------------------------------------------


# Both kinds of item keep their own snapshot of the product; an event refreshes every one.
# Wishlist first: moving an item to the cart (wishlist.move_to_cart) deletes the wishlist row
# before it writes the cart row, and taking locks in the same table order cannot deadlock it.
_SNAPSHOT_TABLES = ("wishlist_items", "cart_items")


async def apply_product_states(db: Database, states: Sequence[tuple[Mapping[str, Any], int]]) -> None:
    """Refresh the snapshots of products (each a state and its version, one per product) in
    every cart and wishlist item that holds an older version. The version guard makes a
    duplicate or an out-of-order (older) state change nothing."""
    await _refresh_snapshots(
        db,
        (
            ("product_name", "text"),
            ("category_name", "text"),
            ("current_price", "numeric"),
            ("is_available", "boolean"),
        ),
        [
            (s["id"], version, s["name"], s["category_name"], s["price"], s["is_active"] and s["stock"] > 0)
            for s, version in states
        ],
    )


async def mark_products_gone(db: Database, gone: Sequence[tuple[int, int]]) -> None:
    """Products (id, version of the deletion) were deleted: their items stay (the shopper sees
    why) but cannot be bought."""
    await _refresh_snapshots(
        db, (("is_available", "boolean"),), [(pid, version, False) for pid, version in gone]
    )


async def _refresh_snapshots(
    db: Database, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[Any, ...]]
) -> None:
    """One UPDATE per item table for any number of products, joining them as arrays.

    A row is (product id, version, then a value for each of `columns`, given as (name, SQL
    type)); one row per product, as a target row joining two would take either. Rows go in
    product id order, which orders the row locks only when the plan drives the join from the
    array; under a hash join the table's scan order decides, so two workers whose batches share
    products can still deadlock (the worker then retries the whole batch)."""
    if not rows:
        return
    spec = (("product_id", "bigint"), ("version", "integer"), *columns)
    arrays = zip(*sorted(rows, key=lambda row: int(row[0])), strict=True)
    values = {name: list(array) for (name, _), array in zip(spec, arrays, strict=True)}
    unnest = ", ".join(f"CAST(:{name} AS {sql_type}[])" for name, sql_type in spec)
    assignments = ", ".join(f"{name} = e.{name}" for name, _ in columns)
    for table in _SNAPSHOT_TABLES:
        await db.execute(
            f"UPDATE {table} AS i SET {assignments}, product_version = e.version"
            f" FROM unnest({unnest}) AS e({', '.join(name for name, _ in spec)})"
            " WHERE i.product_id = e.product_id AND i.product_version < e.version",
            values,
        )
