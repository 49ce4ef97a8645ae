"""What the catalog does: categories and products, their invariants, and the transactions that
keep them true without foreign keys.

Concurrency, in READ COMMITTED (PostgreSQL's default):
- A product write that names a category locks that category row `FOR SHARE` before writing.
  Deleting a category locks it `FOR UPDATE` and only then counts its products: the lock waits
  for every product transaction holding the share lock to finish, and the count, a new
  statement with a new snapshot, sees what they committed. A product writer that arrives after
  the delete waits in turn and then finds the category gone (422). So a product can never
  point at a deleted category.
- Renaming a category updates the row (a lock that conflicts with `FOR SHARE`) and then its
  products' `category_name` in the same transaction, so a concurrent product write either
  reads the new name or is already committed and included in the rename's update.
- Every change records its events in the outbox in the same transaction (`outbox.record`).
- After each commit the changed products are invalidated in the cart's product cache, before
  the answer is sent (`Catalog.products_changed`); a rename changes its products' versions.
- Updates are compare-and-set on `version` (`UPDATE ... WHERE version = :expected`): of two
  concurrent writers expecting the same version, the second's UPDATE waits on the row lock,
  re-checks the condition against the committed row, matches nothing, and gets a conflict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
from databases import Database

from app_product import outbox, repo
from app_product.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_BATCH_IDS,
    Category,
    CategoryCreate,
    CategoryList,
    CategoryPatch,
    Product,
    ProductCreate,
    ProductPage,
    ProductPatch,
    ProductQuery,
)
from shared.errors import Conflict, FieldError, InvalidQuery, NotFound, ValidationFailed
from shared.events import (
    CATEGORY_CREATED,
    CATEGORY_DELETED,
    CATEGORY_UPDATED,
    PRODUCT_CREATED,
    PRODUCT_DELETED,
    PRODUCT_UPDATED,
    Event,
    new_event,
)
from shared.pagination import decode_cursor, page
from shared.product_cache import ProductInvalidator
from shared.types import MAX_BIGINT, set_fields
from shared.versioning import ExpectedVersion


@dataclass(frozen=True)
class Catalog:
    """What catalog writes need: the database, and the cache to tell about changed products."""

    db: Database
    invalidator: ProductInvalidator

    async def products_changed(self, versions: Sequence[tuple[int, int]], *, deleted: bool = False) -> None:
        """After the commit, before the answer: so no cart is served the old product from cache
        once the writer has been told the change is done."""
        await self.invalidator.changed(versions, deleted=deleted)


def _duplicate(exc: asyncpg.UniqueViolationError, values: dict[str, Any]) -> Conflict:
    if exc.constraint_name == "categories_name_key":
        return Conflict(f"A category named {values.get('name')!r} already exists.")
    if exc.constraint_name == "products_sku_key":
        return Conflict(f"A product with sku {values.get('sku')!r} already exists.")
    return Conflict("This would duplicate an existing record.")


def _no_changes() -> ValidationFailed:
    return ValidationFailed(
        "The body sets no field; send at least one field to change.",
        errors=[FieldError(field="(body)", message="no field to change")],
    )


def _unknown_category(category_id: int) -> ValidationFailed:
    message = f"no category has id {category_id}"
    return ValidationFailed(
        f"category_id: {message}", errors=[FieldError(field="category_id", message=message)]
    )


# Categories -----------------------------------------------------------------------------------


async def list_categories(db: Database, is_active: bool | None) -> CategoryList:
    return CategoryList(items=[Category(**row) for row in await repo.list_categories(db, is_active)])


async def get_category(db: Database, category_id: int) -> Category:
    row = await repo.fetch_category(db, category_id)
    if row is None:
        raise NotFound(f"No category has id {category_id}.")
    return Category(**row)


async def create_category(db: Database, body: CategoryCreate) -> Category:
    try:
        async with db.transaction():
            row = await repo.insert_category(db, body.name, body.description, body.is_active)
            category = Category(**row)
            await outbox.record(db, [new_event(CATEGORY_CREATED, category.id, category.version, category)])
    except asyncpg.UniqueViolationError as exc:
        raise _duplicate(exc, {"name": body.name}) from None
    return category


async def update_category(
    catalog: Catalog, category_id: int, patch: CategoryPatch, expected: ExpectedVersion
) -> Category:
    db, renamed = catalog.db, []
    changed = set_fields(patch)
    if not changed:
        raise _no_changes()
    try:
        async with db.transaction():
            row = await repo.update_category(db, category_id, expected.value, changed)
            if row is None:
                raise await _category_missing_or_stale(db, category_id, expected)
            category = Category(**row)
            events = [new_event(CATEGORY_UPDATED, category.id, category.version, category, list(changed))]
            if "name" in changed:
                renamed = [
                    _product(r) for r in await repo.rename_category_in_products(db, category_id, row["name"])
                ]
                events += [product_updated(product, ["category_name"]) for product in renamed]
            await outbox.record(db, events)
    except asyncpg.UniqueViolationError as exc:
        raise _duplicate(exc, changed) from None
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
        await outbox.record(db, [new_event(CATEGORY_DELETED, category_id, row["version"] + 1, None)])


async def _category_missing_or_stale(db: Database, category_id: int, expected: ExpectedVersion) -> Exception:
    row = await repo.fetch_category(db, category_id)
    if row is None:
        return NotFound(f"No category has id {category_id}.")
    return expected.stale(row["version"])


# Products -------------------------------------------------------------------------------------


def _product(row: Any) -> Product:
    return Product(**row)


def product_updated(product: Product, changed: list[str]) -> Event:
    return new_event(PRODUCT_UPDATED, product.id, product.version, product, changed, product.updated_at)


async def get_product(db: Database, product_id: int) -> Product:
    row = await repo.fetch_product(db, product_id)
    if row is None:
        raise NotFound(f"No product has id {product_id}.")
    return _product(row)


async def find_products(db: Database, query: ProductQuery) -> ProductPage:
    """A filtered keyset page, or with `ids` the named products (and which are missing)."""
    if query.ids is not None:
        return await _batch(db, query)
    after = 0 if query.cursor is None else decode_cursor(query.cursor)
    limit = query.limit or DEFAULT_PAGE_SIZE
    rows = await repo.list_products(
        db,
        after=after,
        limit=limit + 1,  # one extra row says whether a next page exists
        category_id=query.category_id,
        is_active=query.is_active,
        q=query.q,
    )
    shown, next_cursor = page(rows, limit)
    return ProductPage(items=[_product(row) for row in shown], next_cursor=next_cursor)


_ID = re.compile(r"^[1-9][0-9]{0,18}\Z")


def _parse_ids(raw: str) -> list[int]:
    parts = raw.split(",")
    if not all(_ID.match(part) and int(part) <= MAX_BIGINT for part in parts):
        message = "must be a comma-separated list of positive integer ids"
    elif len(parts) > MAX_BATCH_IDS:
        message = f"names {len(parts)} ids; at most {MAX_BATCH_IDS} per request"
    else:
        return list(dict.fromkeys(int(part) for part in parts))
    raise InvalidQuery(f"ids: {message}", errors=[FieldError(field="ids", message=message)])


async def _batch(db: Database, query: ProductQuery) -> ProductPage:
    others = [
        name
        for name in ("limit", "cursor", "category_id", "is_active", "q")
        if getattr(query, name) is not None
    ]
    if others:
        message = f"cannot be combined with {', '.join(others)}"
        raise InvalidQuery(f"ids: {message}", errors=[FieldError(field="ids", message=message)])
    ids = _parse_ids(query.ids or "")
    items = [_product(row) for row in await repo.fetch_products(db, ids)]
    found = {item.id for item in items}
    return ProductPage(items=items, next_cursor=None, missing=[i for i in ids if i not in found])


async def _category_name(db: Database, category_id: int | None) -> str | None:
    """The name of the category a product is about to point at, locked for this transaction."""
    if category_id is None:
        return None
    category = await repo.lock_category(db, category_id, exclusive=False)
    if category is None:
        raise _unknown_category(category_id)
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
            product = _product(await repo.insert_product(db, values))
            await outbox.record(db, [new_event(PRODUCT_CREATED, product.id, product.version, product)])
    except asyncpg.UniqueViolationError as exc:
        raise _duplicate(exc, values) from None
    # A cart may have cached "no such product" for this id (a 404 is cached briefly).
    await catalog.products_changed([(product.id, product.version)])
    return product


async def update_product(
    catalog: Catalog, product_id: int, patch: ProductPatch, expected: ExpectedVersion
) -> Product:
    db = catalog.db
    changed = set_fields(patch)
    if not changed:
        raise _no_changes()
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
            product = _product(row)
            await outbox.record(db, [product_updated(product, list(changed))])
    except asyncpg.UniqueViolationError as exc:
        raise _duplicate(exc, changed) from None
    await catalog.products_changed([(product.id, product.version)])
    return product


async def delete_product(catalog: Catalog, product_id: int, expected: ExpectedVersion | None) -> None:
    db = catalog.db
    async with db.transaction():
        deleted = await repo.delete_product(db, product_id, None if expected is None else expected.value)
        if deleted is None:
            current = await repo.product_version(db, product_id)
            if current is None:
                raise NotFound(f"No product has id {product_id}.")
            assert expected is not None
            raise expected.stale(current)
        await outbox.record(db, [new_event(PRODUCT_DELETED, product_id, deleted["version"] + 1, None)])
    await catalog.products_changed([(deleted["id"], deleted["version"])], deleted=True)
