"""`python -m app_product.tools.reconcile [--fix]`: find (and repair) denormalised category drift.

Drift is a product whose `category_name` differs from its category's name, or whose
`category_id` names a category that no longer exists; neither can arise through the API, but a
manual SQL edit or a restored backup can cause either. Without `--fix` it reports and exits 1 if
anything drifted (so a cron job can alert); with `--fix` it repairs in one transaction: names
are refreshed, and products of a missing category become uncategorised.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app_product.app import open_catalog
from app_product.catalog import repo
from app_product.catalog.context import Catalog
from app_product.catalog.models import Product
from app_product.catalog.products import product_updated
from app_product.outbox.record import record
from app_product.settings import CatalogSettings
from shared.config import exit_on_settings_error, load_settings


@dataclass(frozen=True)
class Repair:
    names_refreshed: int
    detached: int


def describe(row: Mapping[str, Any]) -> str:
    product = f"product {row['id']} ({row['sku']})"
    if row["category_missing"]:
        return f"{product}: category {row['category_id']} does not exist"
    category = f"category {row['category_id']} is {row['actual_name']!r}"
    return f"{product}: category_name {row['category_name']!r}, but {category}"


async def repair(catalog: Catalog) -> Repair:
    db = catalog.db
    async with db.transaction():
        # Without this lock a rename committing mid-repair could be overwritten with the old
        # name; with it, renames wait, and the updates below (new snapshots) see every
        # rename committed before it.
        await repo.lock_all_categories(db)
        names = [Product(**row) for row in await repo.fix_stale_category_names(db)]
        detached = [Product(**row) for row in await repo.detach_missing_categories(db)]
        await record(
            db,
            [
                *(product_updated(product, ["category_name"]) for product in names),
                *(product_updated(product, ["category_id", "category_name"]) for product in detached),
            ],
        )
    await catalog.products_changed([(product.id, product.version) for product in (*names, *detached)])
    return Repair(names_refreshed=len(names), detached=len(detached))


async def run(settings: CatalogSettings, fix: bool) -> int:
    async with open_catalog(settings) as catalog:
        drift = await repo.find_drift(catalog.db)
        for row in drift:
            print(describe(row))
        if not drift:
            print("no drift: every product's category_name matches its category")
            return 0
        if not fix:
            print(f"{len(drift)} product(s) drifted; run with --fix to repair")
            return 1
        done = await repair(catalog)
        print(f"repaired: {done.names_refreshed} name(s) refreshed, {done.detached} product(s) uncategorised")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app_product.tools.reconcile", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--fix", action="store_true", help="repair the drift found")
    args = parser.parse_args(argv)
    with exit_on_settings_error("reconcile"):
        settings = load_settings(CatalogSettings)
    return asyncio.run(run(settings, args.fix))


if __name__ == "__main__":
    sys.exit(main())
