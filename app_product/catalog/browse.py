"""What the public reads of the catalog answer: a product, a listing page, a batch of named
products, categories. They read through the read pool (`read_repo`); search is in `search`."""

from __future__ import annotations

from collections.abc import Sequence

from app_product.catalog import read_repo
from app_product.catalog.models import Category, Product
from shared.errors import NotFound
from shared.storage.postgres import ReadPool


async def product(reads: ReadPool, product_id: int) -> Product:
    row = await read_repo.product(reads, product_id)
    if row is None:
        raise NotFound(f"No product has id {product_id}.")
    return read_repo.product_of(row)


async def page(
    reads: ReadPool, *, after: int, limit: int, category_id: int | None, is_active: bool | None
) -> tuple[list[Product], bool]:
    """A keyset page of products after id `after`, under the filters; and whether more follow."""
    rows = await read_repo.listing(
        reads,
        after=after,
        limit=limit + 1,  # one extra row says whether a next page exists
        category_id=category_id,
        is_active=is_active,
    )
    return [read_repo.product_of(row) for row in rows[:limit]], len(rows) > limit


async def batch(reads: ReadPool, ids: Sequence[int]) -> tuple[list[Product], list[int]]:
    """The named products that exist, in id order, and the ids that name none."""
    items = [read_repo.product_of(row) for row in await read_repo.products(reads, ids)]
    found = {item.id for item in items}
    return items, [i for i in ids if i not in found]


async def categories(reads: ReadPool, is_active: bool | None) -> list[Category]:
    return [Category(**row) for row in await read_repo.categories(reads, is_active)]


async def category(reads: ReadPool, category_id: int) -> Category:
    row = await read_repo.category(reads, category_id)
    if row is None:
        raise NotFound(f"No category has id {category_id}.")
    return Category(**row)
