"""`python -m app_cart.tools.backfill_categories`: record the category of items written before
items kept it (sql/cart/003_item_category.sql), from the catalog's batch endpoint.

Until it has run, a seed `category.updated` does not find those items (an event about one of
their products fills them in the meantime). It walks the products some item holds with no
category, a page at a time (SWEEP_PAGE_SIZE; one catalog request per 100 products), reading
the catalog first, then writing in a transaction:
- items behind the catalog get its current state, category included, through the worker's
  version-guarded refresh (`app_cart.worker.refresh`);
- items already as new as the catalog get only its category, and only where they still have
  none (`snapshots.fill_categories`), so an event applied meanwhile is never overwritten.
Safe to rerun, and to run beside the workers: each write is version-guarded, and what it did is
what the events would have done. Products without a category in the catalog stay without one
(a rerun asks for them again). Prints what it did; exits 1 if the catalog cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import NamedTuple

from databases import Database

from app_cart.adapters import snapshots
from app_cart.adapters.catalog_client import CatalogUnavailable, catalog_client
from app_cart.settings import CartSettings
from app_cart.worker.refresh import Catalog, refresh
from shared.config import exit_on_settings_error, load_settings
from shared.storage.postgres import DATABASE_UNAVAILABLE, create_database
from shared.storage.redis_conn import create_redis


class Backfilled(NamedTuple):
    products: int  # products read from the catalog
    refreshed: int  # of them, behind the catalog: their items got its state
    filled: int  # items that got only their category


async def backfill(db: Database, catalog: Catalog, page_size: int) -> Backfilled:
    products = refreshed = filled = 0
    after = 0
    while page := await snapshots.held_products(db, after, page_size, without_category=True):
        done = await refresh(db, catalog, page)  # the catalog is read outside any transaction
        async with db.transaction():
            filled += await snapshots.fill_categories(
                db,
                [
                    (product.id, product.version, product.category_id)
                    for product in done.current.values()
                    if product.category_id is not None
                ],
            )
        products += len(page)
        refreshed += len(done.behind)
        after = page[-1].product_id
    return Backfilled(products, refreshed, filled)


async def _main(settings: CartSettings) -> Backfilled:
    db, redis = create_database(settings), create_redis(settings)
    await db.connect()
    catalog = catalog_client(settings, redis)
    try:
        return await backfill(db, catalog, settings.sweep_page_size)
    finally:
        await catalog.aclose()
        await db.disconnect()
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app_cart.tools.backfill_categories", description=__doc__.splitlines()[0]
    )
    parser.parse_args(argv)
    with exit_on_settings_error("backfill"):
        settings = load_settings(CartSettings)
    try:
        done = asyncio.run(_main(settings))
    except CatalogUnavailable as exc:
        print(f"backfill: the catalog cannot be read ({exc}); nothing more was written", file=sys.stderr)
        return 1
    except DATABASE_UNAVAILABLE as exc:
        print(
            f"backfill: the cart's database cannot be reached ({type(exc).__name__}: {exc})", file=sys.stderr
        )
        return 1
    print(
        f"backfill: {done.products} product(s) without a category on some item; {done.refreshed} behind"
        f" the catalog, refreshed; {done.filled} item(s) given their category"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
