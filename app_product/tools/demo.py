"""`python -m app_product.tools.demo`: load demo data (5 categories, 300 products) through the service.

Idempotent: what exists (same category name, same sku) is left as it is, so running it on every
start is safe. It goes through the service layer, so the data obeys every catalog rule.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from databases import Database

from app_product.app import open_catalog
from app_product.catalog import categories, products, repo
from app_product.catalog.context import Catalog
from app_product.catalog.models import CategoryCreate, ProductCreate
from app_product.settings import CatalogSettings
from shared.config import exit_on_settings_error, load_settings
from shared.errors import Conflict

CATEGORIES = {
    "Shoes": ["Runner", "Boot", "Sandal", "Loafer", "Sneaker", "Slipper"],
    "Jackets": ["Parka", "Blazer", "Bomber", "Raincoat", "Fleece", "Gilet"],
    "Bags": ["Backpack", "Tote", "Duffel", "Satchel", "Messenger", "Clutch"],
    "Hats": ["Beanie", "Cap", "Fedora", "Bucket Hat", "Beret", "Sun Hat"],
    "Accessories": ["Scarf", "Belt", "Wallet", "Gloves", "Sunglasses", "Umbrella"],
}
COLOURS = ["Black", "Navy", "Olive", "Sand", "Red", "Grey", "White", "Teal", "Rust", "Plum"]
PRODUCTS = 300


async def _category_ids(db: Database) -> dict[str, int]:
    # Names are unique ignoring case, so an existing "shoes" is the demo's "Shoes".
    existing = await repo.category_ids_by_name(db)
    ids = {}
    for name in CATEGORIES:
        if name.lower() not in existing:
            existing[name.lower()] = (await categories.create_category(db, CategoryCreate(name=name))).id
        ids[name] = existing[name.lower()]
    return ids


def _product(index: int, category_id: int, kinds: list[str]) -> ProductCreate:
    kind = kinds[index % len(kinds)]
    colour = COLOURS[(index // len(kinds)) % len(COLOURS)]
    price = Decimal(9 + (index * 37) % 190) + Decimal("0.99")
    return ProductCreate(
        sku=f"DEMO-{index:04d}",
        name=f"{colour} {kind} No. {index}",
        description=f"A {colour.lower()} {kind.lower()} from the demo catalog.",
        price=str(price),
        stock=(index * 13) % 120,
        category_id=category_id,
        is_active=index % 25 != 0,  # a few inactive products, to show the filter
    )


async def load(catalog: Catalog) -> int:
    """Create what is missing; return how many products were created."""
    ids = await _category_ids(catalog.db)
    names = list(CATEGORIES)
    created = 0
    for index in range(1, PRODUCTS + 1):
        name = names[index % len(names)]
        try:
            await products.create_product(catalog, _product(index, ids[name], CATEGORIES[name]))
        except Conflict:
            continue  # already loaded by an earlier run
        created += 1
    return created


async def run(settings: CatalogSettings) -> None:
    async with open_catalog(settings) as catalog:
        created = await load(catalog)
    print(f"demo data: {len(CATEGORIES)} categories, {created} new product(s) of {PRODUCTS}")


def main() -> int:
    with exit_on_settings_error("demo"):
        settings = load_settings(CatalogSettings)
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
