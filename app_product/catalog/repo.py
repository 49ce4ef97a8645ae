"""Every SQL statement of the catalog's categories and products (the outbox's are in
`app_product.outbox.repo`).

Functions take the `databases.Database`; inside a service-level `db.transaction()` they run on
that transaction's connection (databases binds it to the calling task). Rows come back as
mappings; the service turns them into wire types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from databases import Database

from app_product.catalog.models import Product
from shared.storage.postgres import compare_and_set, inserted

Row = Mapping[str, Any]

CATEGORY_COLUMNS = "id, name, description, is_active, version, created_at, updated_at"
# Product's fields, in their order: a row of these columns makes a Product positionally.
PRODUCT_COLUMNS = ", ".join(Product.__struct_fields__)
# The only columns a PATCH may set: dynamic SET lists are built from these names, never from input.
CATEGORY_MUTABLE = frozenset({"name", "description", "is_active"})
PRODUCT_MUTABLE = frozenset(
    {"sku", "name", "description", "price", "stock", "category_id", "category_name", "is_active"}
)


def _mapping(row: Any) -> Row | None:
    return None if row is None else row._mapping


# Categories -----------------------------------------------------------------------------------


async def category_ids_by_name(db: Database) -> dict[str, int]:
    """Every category's id by its lower-cased name (the demo data's tool)."""
    rows = await db.fetch_all("SELECT id, lower(name) AS name FROM categories")
    return {row["name"]: row["id"] for row in rows}


async def fetch_category(db: Database, category_id: int) -> Row | None:
    row = await db.fetch_one(f"SELECT {CATEGORY_COLUMNS} FROM categories WHERE id = :id", {"id": category_id})
    return _mapping(row)


async def lock_category(db: Database, category_id: int, *, exclusive: bool) -> Row | None:
    """Lock a category row for the rest of the transaction.

    Product writers take it shared (a category they point at cannot be deleted or renamed
    under them); deleting a category takes it exclusive.
    """
    mode = "UPDATE" if exclusive else "SHARE"
    row = await db.fetch_one(
        f"SELECT {CATEGORY_COLUMNS} FROM categories WHERE id = :id FOR {mode}", {"id": category_id}
    )
    return _mapping(row)


async def insert_category(db: Database, name: str, description: str, is_active: bool) -> Row:
    row = await db.fetch_one(
        "INSERT INTO categories (name, description, is_active)"
        f" VALUES (:name, :description, :is_active) RETURNING {CATEGORY_COLUMNS}",
        {"name": name, "description": description, "is_active": is_active},
    )
    return inserted(row)


async def update_category(
    db: Database, category_id: int, version: int, changes: Mapping[str, Any]
) -> Row | None:
    """Apply `changes` if the category is still at `version`; None if absent or stale."""
    return await compare_and_set(
        db, "categories", CATEGORY_COLUMNS, CATEGORY_MUTABLE, category_id, version, changes
    )


async def rename_category_in_products(db: Database, category_id: int, name: str) -> list[Row]:
    """Refresh the denormalised name; each product changed is a new version of it (its
    representation changed, and caches and events key on versions). Returns the new rows."""
    rows = await db.fetch_all(
        "UPDATE products SET category_name = :name, version = version + 1, updated_at = now()"
        f" WHERE category_id = :id AND category_name IS DISTINCT FROM :name RETURNING {PRODUCT_COLUMNS}",
        {"id": category_id, "name": name},
    )
    return [row._mapping for row in rows]


async def count_products_in_category(db: Database, category_id: int) -> int:
    count = await db.fetch_val("SELECT count(*) FROM products WHERE category_id = :id", {"id": category_id})
    return int(count)


async def delete_category(db: Database, category_id: int) -> None:
    await db.execute("DELETE FROM categories WHERE id = :id", {"id": category_id})


# Products -------------------------------------------------------------------------------------


async def product_version(db: Database, product_id: int) -> int | None:
    version = await db.fetch_val("SELECT version FROM products WHERE id = :id", {"id": product_id})
    return None if version is None else int(version)


async def insert_product(db: Database, values: Mapping[str, Any]) -> Row:
    row = await db.fetch_one(
        "INSERT INTO products (sku, name, description, price, stock, category_id, category_name, is_active)"
        " VALUES (:sku, :name, :description, :price, :stock, :category_id, :category_name, :is_active)"
        f" RETURNING {PRODUCT_COLUMNS}",
        dict(values),
    )
    return inserted(row)


async def update_product(
    db: Database, product_id: int, version: int, changes: Mapping[str, Any]
) -> Row | None:
    """Apply `changes` if the product is still at `version`; None if absent or stale."""
    return await compare_and_set(
        db, "products", PRODUCT_COLUMNS, PRODUCT_MUTABLE, product_id, version, changes
    )


async def delete_product(db: Database, product_id: int, version: int | None) -> Row | None:
    """Delete the product (only at `version` when given); the deleted row, or None."""
    row = await db.fetch_one(
        "DELETE FROM products WHERE id = :id"
        " AND (CAST(:version AS integer) IS NULL OR version = :version)"
        f" RETURNING {PRODUCT_COLUMNS}",
        {"id": product_id, "version": version},
    )
    return _mapping(row)


# Denormalisation drift (reconcile) ------------------------------------------------------------


async def find_drift(db: Database) -> list[Row]:
    """Products whose category_name differs from their category's, or whose category is gone."""
    rows = await db.fetch_all(
        "SELECT p.id, p.sku, p.category_id, p.category_name, c.name AS actual_name,"
        " (c.id IS NULL) AS category_missing"
        " FROM products p LEFT JOIN categories c ON c.id = p.category_id"
        " WHERE p.category_id IS NOT NULL AND (c.id IS NULL OR p.category_name IS DISTINCT FROM c.name)"
        " ORDER BY p.id"
    )
    return [row._mapping for row in rows]


async def lock_all_categories(db: Database) -> None:
    """Hold every category row shared, so no rename or delete commits while drift is repaired."""
    await db.execute("SELECT id FROM categories FOR SHARE")


async def fix_stale_category_names(db: Database) -> list[Row]:
    """Refresh drifted names (a new version of each product); the new rows."""
    columns = ", ".join(f"p.{column.strip()}" for column in PRODUCT_COLUMNS.split(","))
    rows = await db.fetch_all(
        "UPDATE products p SET category_name = c.name, version = p.version + 1, updated_at = now()"
        " FROM categories c WHERE c.id = p.category_id AND p.category_name IS DISTINCT FROM c.name"
        f" RETURNING {columns}"
    )
    return [row._mapping for row in rows]


async def detach_missing_categories(db: Database) -> list[Row]:
    """Products naming a category that no longer exists become uncategorised; the new rows."""
    rows = await db.fetch_all(
        "UPDATE products p SET category_id = NULL, category_name = NULL,"
        " version = version + 1, updated_at = now()"
        " WHERE p.category_id IS NOT NULL"
        f" AND NOT EXISTS (SELECT 1 FROM categories c WHERE c.id = p.category_id) RETURNING {PRODUCT_COLUMNS}"
    )
    return [row._mapping for row in rows]
