"""The anti-entropy sweep on a real database: it repairs what events should have changed and
did not, leaves alone what is current or newer, rewrites nothing twice, and one worker sweeps
at a time."""

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest
from databases import Database

from app_cart.adapters.catalog_client import CatalogProduct
from app_cart.worker.refresh import GONE_VERSION
from app_cart.worker.sweep import Sweep
from shared.storage.migrations import SQL_ROOT, migrate

SHOES = 7


def product(product_id: int, version: int, price: str = "1.00", stock: int = 5) -> CatalogProduct:
    return CatalogProduct(
        id=product_id, name=f"p{product_id} v{version}", price=Decimal(price), stock=stock,
        is_active=True, category_name="Shoes", category_id=SHOES, version=version,
    )  # fmt: skip


class Catalog:
    """The catalog's batch endpoint as the sweep sees it; records the pages asked."""

    def __init__(self, products: dict[int, CatalogProduct]) -> None:
        self.products = products
        self.pages: list[list[int]] = []

    async def get_many(self, ids: list[int]) -> dict[int, CatalogProduct]:
        self.pages.append(ids)
        return {pid: self.products[pid] for pid in ids if pid in self.products}


@pytest.fixture
async def cart_db(fresh_db_url):
    await migrate(fresh_db_url, SQL_ROOT / "cart")
    db = Database(fresh_db_url)
    await db.connect()
    yield fresh_db_url, db
    await db.disconnect()


async def hold(url: str, table: str, items: list[tuple[int, int, bool]]) -> None:
    """A new cart (or wishlist) holding (product id, version, available) items, in category
    SHOES as the events left them (the sweep must not skip items that know their category)."""
    conn = await asyncpg.connect(url)
    try:
        owner = "carts" if table == "cart_items" else "wishlists"
        column = "cart_id" if table == "cart_items" else "wishlist_id"
        owner_id = await conn.fetchval(
            f"INSERT INTO {owner} (user_id) VALUES ($1) RETURNING id", uuid.uuid4().hex
        )
        quantity = ("quantity, ", "1, ") if table == "cart_items" else ("", "")
        await conn.executemany(
            f"INSERT INTO {table} ({column}, product_id, {quantity[0]}product_name, price_when_added,"
            f" current_price, is_available, product_version, category_id)"
            f" VALUES ($1, $2, {quantity[1]}'old', 1, 1, $4, $3, {SHOES})",
            [(owner_id, pid, version, available) for pid, version, available in items],
        )
    finally:
        await conn.close()


async def items(url: str) -> dict[tuple[str, int], tuple[int, str, bool, str]]:
    conn = await asyncpg.connect(url)
    try:
        found = {}
        for table in ("cart_items", "wishlist_items"):
            for row in await conn.fetch(
                "SELECT product_id, product_version, current_price::text, is_available, xmin::text"
                f" FROM {table}"
            ):
                found[(table, row["product_id"])] = tuple(row.values())[1:]
        return found
    finally:
        await conn.close()


async def test_it_repairs_what_is_behind_and_only_that(cart_db):
    url, db = cart_db
    await hold(url, "cart_items", [(1, 1, True), (2, 1, True), (3, 5, True), (4, 2, True), (5, 1, False)])
    await hold(url, "wishlist_items", [(1, 2, True), (6, 1, True)])
    catalog = Catalog(
        {1: product(1, 3, "3.00"), 3: product(3, 3), 4: product(4, 2), 6: product(6, 2, stock=0)}
    )
    sweep = Sweep(db, url, catalog, page_size=2)
    assert await sweep.sweep_once() == 3  # 1 (behind in both tables), 2 (deleted), 6 (sold out)
    after = await items(url)
    assert after[("cart_items", 1)][:3] == (3, "3.00", True)
    assert after[("wishlist_items", 1)][:3] == (3, "3.00", True)
    assert after[("cart_items", 2)][:3] == (GONE_VERSION, "1.00", False)
    assert after[("cart_items", 3)][0] == 5  # newer than the catalog's answer: never rolled back
    assert after[("cart_items", 5)][:3] == (1, "1.00", False)  # gone already: nothing to do
    assert after[("wishlist_items", 6)][:3] == (2, "1.00", False)
    assert catalog.pages == [[1, 2], [3, 4], [5, 6]]  # a request per page of distinct products
    assert await sweep.sweep_once() == 0  # nothing is behind any more: nothing is rewritten
    assert await items(url) == after
    assert sweep.repaired == 3


async def test_a_product_held_by_many_items_is_judged_on_all_of_them(cart_db):
    """The page is of distinct products: the oldest item decides, however many hold it."""
    url, db = cart_db
    for _ in range(5):
        await hold(url, "cart_items", [(1, 2, True), (2, 2, True)])
    await hold(url, "cart_items", [(1, 1, True)])  # the one behind, last inserted
    sweep = Sweep(db, url, Catalog({1: product(1, 2), 2: product(2, 2)}), page_size=1)
    assert await sweep.sweep_once() == 1
    assert {v[0] for (table, pid), v in (await items(url)).items() if pid == 1} == {2}


async def test_one_worker_sweeps_at_a_time(cart_db):
    url, db = cart_db
    await hold(url, "cart_items", [(1, 1, True)])
    started, release = asyncio.Event(), asyncio.Event()

    class Slow(Catalog):
        async def get_many(self, ids: list[int]) -> dict[int, CatalogProduct]:
            started.set()
            await release.wait()
            return await super().get_many(ids)

    first = asyncio.create_task(Sweep(db, url, Slow({1: product(1, 2)}), 100).sweep_once())
    await started.wait()
    assert await Sweep(db, url, Catalog({1: product(1, 2)}), 100).sweep_once() is None
    release.set()
    assert await first == 1
