"""The SQL that refreshes the product snapshots cart and wishlist items keep, from catalog
events (the worker) or the catalog's own answer (the sweep)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from databases import Database

# Both kinds of item keep their own snapshot of the product; an event refreshes every one.
# Wishlist first: moving an item to the cart (services.wishlist.move_to_cart) deletes the wishlist row
# before it writes the cart row, and taking locks in the same table order cannot deadlock it.
_SNAPSHOT_TABLES = ("wishlist_items", "cart_items")

# The columns `_refresh_snapshots` joins as arrays: (name, SQL type). Every row starts with
# the key; a state sets the rest of the snapshot, a deletion only the availability.
_KEY_COLUMNS = (("product_id", "bigint"), ("version", "integer"))
_STATE_COLUMNS = (
    ("product_name", "text"),
    ("category_name", "text"),
    ("current_price", "numeric"),
    ("is_available", "boolean"),
    ("category_id", "bigint"),
)
_GONE_COLUMNS = (("is_available", "boolean"),)


class Snapshot(NamedTuple):
    """What an item keeps of its product, at a version."""

    product_id: int
    version: int
    name: str
    category_name: str | None
    price: Decimal
    is_available: bool
    category_id: int | None


async def apply_product_states(db: Database, snapshots: Sequence[Snapshot]) -> None:
    """Refresh the snapshots of products (one per product) in every cart and wishlist item that
    holds an older version. The version guard makes a duplicate or an out-of-order (older)
    state change nothing."""
    await _refresh_snapshots(db, _STATE_COLUMNS, snapshots)


async def mark_products_gone(db: Database, gone: Sequence[tuple[int, int]]) -> None:
    """Products (id, version of the deletion) were deleted: their items stay (the shopper sees
    why) but cannot be bought."""
    await _refresh_snapshots(db, _GONE_COLUMNS, [(pid, version, False) for pid, version in gone])


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
    spec = (*_KEY_COLUMNS, *columns)
    ordered = sorted(rows)  # by product id: it comes first, and no two rows share one
    values = {name: [row[i] for row in ordered] for i, (name, _) in enumerate(spec)}
    unnest = ", ".join(f"CAST(:{name} AS {sql_type}[])" for name, sql_type in spec)
    assignments = ", ".join(f"{name} = e.{name}" for name, _ in columns)
    for table in _SNAPSHOT_TABLES:
        await db.execute(
            f"UPDATE {table} AS i SET {assignments}, product_version = e.version"
            f" FROM unnest({unnest}) AS e({', '.join(name for name, _ in spec)})"
            " WHERE i.product_id = e.product_id AND i.product_version < e.version",
            values,
        )


_WITHOUT_CATEGORY = " AND category_id IS NULL"


class Held(NamedTuple):
    """A product as the cart's items hold it: the oldest version any item has, and whether any
    item still says it can be bought."""

    product_id: int
    oldest_version: int
    any_available: bool


async def held_products(
    db: Database, after: int, limit: int, *, without_category: bool = False
) -> list[Held]:
    """A page of the distinct products held in carts and wishlists, in id order, after `after`
    (with `without_category`, only those some item holds with no category recorded: written
    before items kept it, or of a product without one): the ids first (each table walked by its
    product_id index, stopping after `limit` distinct ones), then every item row of exactly
    those ids, so a product held by many items is judged on all of them."""
    only = _WITHOUT_CATEGORY if without_category else ""
    rows = await db.fetch_all(
        "WITH ids AS (SELECT product_id FROM ("
        f" (SELECT DISTINCT product_id FROM cart_items WHERE product_id > :after{only}"
        " ORDER BY product_id LIMIT :limit)"
        " UNION"
        f" (SELECT DISTINCT product_id FROM wishlist_items WHERE product_id > :after{only}"
        " ORDER BY product_id LIMIT :limit)"
        ") AS both_tables ORDER BY product_id LIMIT :limit)"
        " SELECT held.product_id, min(held.product_version) AS oldest,"
        " bool_or(held.is_available) AS available"
        " FROM (SELECT product_id, product_version, is_available FROM cart_items"
        " UNION ALL SELECT product_id, product_version, is_available FROM wishlist_items) AS held"
        " JOIN ids USING (product_id) GROUP BY held.product_id ORDER BY held.product_id",
        {"after": after, "limit": limit},
    )
    return [Held(row["product_id"], row["oldest"], row["available"]) for row in rows]


async def held_in_categories(db: Database, category_ids: Sequence[int]) -> list[Held]:
    """The distinct products that cart and wishlist items hold as in one of `category_ids`
    (each table through its category index), judged on all their items there."""
    rows = await db.fetch_all(
        "SELECT held.product_id, min(held.product_version) AS oldest,"
        " bool_or(held.is_available) AS available"
        " FROM (SELECT product_id, product_version, is_available FROM cart_items"
        " WHERE category_id = ANY(CAST(:ids AS bigint[]))"
        " UNION ALL SELECT product_id, product_version, is_available FROM wishlist_items"
        " WHERE category_id = ANY(CAST(:ids AS bigint[]))) AS held"
        " GROUP BY held.product_id ORDER BY held.product_id",
        {"ids": list(category_ids)},
    )
    return [Held(row["product_id"], row["oldest"], row["available"]) for row in rows]


async def fill_categories(db: Database, categories: Sequence[tuple[int, int, int]]) -> int:
    """Record (product id, version, category id) on the items of that product at that version
    that have none: what the backfill writes where an item is already as new as the catalog.
    Items of another version are left to the version-guarded refresh; an item that got its
    category meanwhile (an event) keeps it. The items written."""
    if not categories:
        return 0
    ordered = sorted(categories)
    values = {
        "ids": [row[0] for row in ordered],
        "versions": [row[1] for row in ordered],
        "categories": [row[2] for row in ordered],
    }
    written = 0
    for table in _SNAPSHOT_TABLES:
        rows = await db.fetch_all(
            f"UPDATE {table} AS i SET category_id = e.category_id"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS integer[]),"
            " CAST(:categories AS bigint[])) AS e(product_id, version, category_id)"
            " WHERE i.product_id = e.product_id AND i.product_version = e.version AND i.category_id IS NULL"
            " RETURNING 1",
            values,
        )
        written += len(rows)
    return written
