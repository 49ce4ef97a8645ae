"""Categories: what the catalog does with them, and the transactions that keep its rules true
without foreign keys (in READ COMMITTED, PostgreSQL's default).

- Deleting a category locks it `FOR UPDATE` and only then counts its products: the lock waits
  for every product transaction holding the share lock (`products.py`) to finish, and the
  count, a new statement with a new snapshot, sees what they committed. A product writer that
  arrives after the delete waits in turn and then finds the category gone (422). So a product
  can never point at a deleted category.
- Renaming a category updates the row (a lock that conflicts with `FOR SHARE`) and then its
  products' `category_name` in the same transaction, so a concurrent product write either
  reads the new name or is already committed and included in the rename's update; each
  renamed product is a new version with its own event.
- Every change records its events in the outbox in the same transaction.
- Updates are compare-and-set on `version`: of two concurrent writers expecting the same
  version, the second's UPDATE waits on the row lock, re-checks the condition against the
  committed row, matches nothing, and gets a conflict.
"""

from __future__ import annotations

import asyncpg
from databases import Database

from app_product.catalog import repo
from app_product.catalog.context import Catalog
from app_product.catalog.models import Category, CategoryCreate, CategoryPatch
from app_product.catalog.products import product_from, product_updated
from app_product.catalog.refusals import duplicate, no_changes
from app_product.outbox.record import record
from shared.errors import Conflict, NotFound
from shared.events.envelope import CATEGORY_CREATED, CATEGORY_DELETED, CATEGORY_UPDATED, new_event
from shared.http.versioning import ExpectedVersion
from shared.types import set_fields


async def create_category(db: Database, body: CategoryCreate) -> Category:
    try:
        async with db.transaction():
            row = await repo.insert_category(db, body.name, body.description, body.is_active)
            category = Category(**row)
            await record(db, [new_event(CATEGORY_CREATED, category.id, category.version, category)])
    except asyncpg.UniqueViolationError as exc:
        raise duplicate(exc, {"name": body.name}) from None
    return category


async def update_category(
    catalog: Catalog, category_id: int, patch: CategoryPatch, expected: ExpectedVersion
) -> Category:
    db, renamed = catalog.db, []
    changed = set_fields(patch)
    if not changed:
        raise no_changes()
    try:
        async with db.transaction():
            row = await repo.update_category(db, category_id, expected.value, changed)
            if row is None:
                raise await _category_missing_or_stale(db, category_id, expected)
            category = Category(**row)
            events = [new_event(CATEGORY_UPDATED, category.id, category.version, category, list(changed))]
            if "name" in changed:
                renamed = [
                    product_from(r)
                    for r in await repo.rename_category_in_products(db, category_id, row["name"])
                ]
                events += [product_updated(product, ["category_name"]) for product in renamed]
            await record(db, events)
    except asyncpg.UniqueViolationError as exc:
        raise duplicate(exc, changed) from None
    await catalog.products_changed([(product.id, product.version) for product in renamed])
    return category


async def delete_category(db: Database, category_id: int, expected: ExpectedVersion | None) -> None:
    async with db.transaction():
        row = await repo.lock_category(db, category_id, exclusive=True)
        if row is None:
            raise NotFound(f"No category has id {category_id}.")
        if expected is not None and row["version"] != expected.value:
            raise expected.stale(row["version"])
        in_use = await repo.count_products_in_category(db, category_id)
        if in_use:
            raise Conflict(
                f"Category {category_id} still has {in_use} product(s); move or delete them first.",
                product_count=in_use,
            )
        await repo.delete_category(db, category_id)
        # A deleted aggregate's last event carries the version after its last change.
        await record(db, [new_event(CATEGORY_DELETED, category_id, row["version"] + 1, None)])


async def _category_missing_or_stale(db: Database, category_id: int, expected: ExpectedVersion) -> Exception:
    row = await repo.fetch_category(db, category_id)
    if row is None:
        return NotFound(f"No category has id {category_id}.")
    return expected.stale(row["version"])
