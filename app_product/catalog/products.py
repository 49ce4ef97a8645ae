"""Products: what the catalog does with them, and the transactions that keep its rules true.

- A product write that names a category locks that category row `FOR SHARE` before writing,
  so the category cannot be deleted or renamed under it (see `categories.py`).
- Every change records its events in the outbox in the same transaction (`outbox.record`).
- After each commit the changed products are invalidated in the cart's product cache, before
  the answer is sent (`Catalog.products_changed`).
- Updates are compare-and-set on `version` (`UPDATE ... WHERE version = :expected`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
from databases import Database

from app_product.catalog import repo
from app_product.catalog.context import Catalog
from app_product.catalog.models import Product, ProductCreate, ProductPatch
from app_product.catalog.refusals import duplicate, no_changes, unknown_category
from app_product.outbox.record import record
from shared.errors import NotFound
from shared.events.envelope import PRODUCT_CREATED, PRODUCT_DELETED, PRODUCT_UPDATED, Event, new_event
from shared.http.versioning import ExpectedVersion
from shared.types import set_fields


def product_from(row: Any) -> Product:
    return Product(**row)


def product_updated(product: Product, changed: list[str]) -> Event:
    return new_event(PRODUCT_UPDATED, product.id, product.version, product, changed, product.updated_at)


async def _category_name(db: Database, category_id: int | None) -> str | None:
    """The name of the category a product is about to point at, locked for this transaction."""
    if category_id is None:
        return None
    category = await repo.lock_category(db, category_id, exclusive=False)
    if category is None:
        raise unknown_category(category_id)
    return str(category["name"])


async def create_product(catalog: Catalog, body: ProductCreate) -> Product:
    db = catalog.db
    values = {
        "sku": body.sku,
        "name": body.name,
        "description": body.description,
        "price": Decimal(body.price),
        "stock": body.stock,
        "category_id": body.category_id,
        "is_active": body.is_active,
    }
    try:
        async with db.transaction():
            values["category_name"] = await _category_name(db, body.category_id)
            product = product_from(await repo.insert_product(db, values))
            await record(db, [new_event(PRODUCT_CREATED, product.id, product.version, product)])
    except asyncpg.UniqueViolationError as exc:
        raise duplicate(exc, values) from None
    # A cart may have cached "no such product" for this id (a 404 is cached briefly).
    await catalog.products_changed([(product.id, product.version)])
    return product


async def update_product(
    catalog: Catalog, product_id: int, patch: ProductPatch, expected: ExpectedVersion
) -> Product:
    db = catalog.db
    changed = set_fields(patch)
    if not changed:
        raise no_changes()
    if "price" in changed:
        changed["price"] = Decimal(str(changed["price"]))
    try:
        async with db.transaction():
            if "category_id" in changed:
                changed["category_name"] = await _category_name(db, changed["category_id"])
            row = await repo.update_product(db, product_id, expected.value, changed)
            if row is None:
                current = await repo.product_version(db, product_id)
                if current is None:
                    raise NotFound(f"No product has id {product_id}.")
                raise expected.stale(current)
            product = product_from(row)
            await record(db, [product_updated(product, list(changed))])
    except asyncpg.UniqueViolationError as exc:
        raise duplicate(exc, changed) from None
    await catalog.products_changed([(product.id, product.version)])
    return product


async def delete_product(catalog: Catalog, product_id: int, expected: ExpectedVersion | None) -> None:
    db = catalog.db
    async with db.transaction():
        deleted = await repo.delete_product(db, product_id, None if expected is None else expected.value)
        if deleted is None:
            current = await repo.product_version(db, product_id)
            if current is None or expected is None:  # without a version only a missing row fails
                raise NotFound(f"No product has id {product_id}.")
            raise expected.stale(current)
        await record(db, [new_event(PRODUCT_DELETED, product_id, deleted["version"] + 1, None)])
    await catalog.products_changed([(deleted["id"], deleted["version"])], deleted=True)
