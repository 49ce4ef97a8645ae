"""Denormalised drift: found, reported with exit 1, repaired with --fix in one transaction."""

import sys

import anyio
import asyncpg
import pytest

from app_product.app import open_catalog
from app_product.catalog import categories
from app_product.catalog import products as catalog_products
from app_product.catalog.models import CategoryCreate, ProductCreate
from app_product.settings import CatalogSettings
from app_product.tools import reconcile
from shared.config import load_settings
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.env import service_env


@pytest.fixture
async def drifted(fresh_db_url, redis_server):
    """A catalog database with one stale category_name and one product of a deleted category."""
    await migrate(fresh_db_url, SQL_ROOT / "catalog")
    settings = load_settings(CatalogSettings, service_env(fresh_db_url, redis_server.url))
    async with open_catalog(settings) as catalog:
        shoes = await categories.create_category(catalog.db, CategoryCreate(name="Shoes"))
        hats = await categories.create_category(catalog.db, CategoryCreate(name="Hats"))
        products = {
            key: await catalog_products.create_product(
                catalog, ProductCreate(sku=sku, name=key, price="1.00", category_id=category.id)
            )
            for key, sku, category in (
                ("ok", "OK-1", shoes),
                ("stale", "ST-1", shoes),
                ("orphan", "OR-1", hats),
            )
        }
    conn = await asyncpg.connect(fresh_db_url)  # what a careless manual edit would do
    await conn.execute("UPDATE products SET category_name = 'Shoos' WHERE id = $1", products["stale"].id)
    await conn.execute("DELETE FROM categories WHERE id = $1", hats.id)
    await conn.close()
    return settings, products


async def test_report_lists_drift_and_exits_1(drifted, capsys):
    settings, products = drifted
    assert await reconcile.run(settings, fix=False) == 1
    out = capsys.readouterr().out
    assert f"product {products['stale'].id} (ST-1): category_name 'Shoos', but category" in out
    assert (
        f"product {products['orphan'].id} (OR-1): category {products['orphan'].category_id} does not exist"
        in out
    )
    assert "OK-1" not in out


async def test_fix_repairs_and_a_second_run_finds_nothing(drifted, fresh_db_url, capsys):
    settings, _ = drifted
    assert await reconcile.run(settings, fix=True) == 0
    assert "1 name(s) refreshed, 1 product(s) uncategorised" in capsys.readouterr().out
    assert await reconcile.run(settings, fix=False) == 0
    conn = await asyncpg.connect(fresh_db_url)
    rows = {
        r["sku"]: r for r in await conn.fetch("SELECT sku, category_id, category_name, version FROM products")
    }
    await conn.close()
    assert rows["ST-1"]["category_name"] == "Shoes"
    assert (rows["OR-1"]["category_id"], rows["OR-1"]["category_name"], rows["OR-1"]["version"]) == (
        None,
        None,
        2,
    )
    assert rows["OK-1"]["version"] == 1


async def test_cli_exit_codes(drifted, fresh_db_url, redis_server):
    env = {"PATH": "/usr/bin:/bin", **service_env(fresh_db_url, redis_server.url)}
    command = [sys.executable, "-m", "app_product.tools.reconcile"]
    assert (await anyio.run_process(command, env=env, check=False)).returncode == 1
    assert (await anyio.run_process([*command, "--fix"], env=env, check=False)).returncode == 0
    assert (await anyio.run_process(command, env=env, check=False)).returncode == 0


async def wait_until_another_session_waits_for_a_lock(conn: asyncpg.Connection) -> None:
    """Until some other session of this (test-owned) database waits for a lock; with a deadline."""
    # Polling is the only way to see another session's state; there is nothing to await.
    with anyio.fail_after(10):
        while not await conn.fetchval(  # noqa: ASYNC110
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        ):
            await anyio.sleep(0.02)


async def test_repair_never_undoes_a_rename_committing_meanwhile(fresh_db_url, redis_server):
    # A drifted product, and a rename in flight when the repair starts. Without the repair's
    # lock on categories, its UPDATE would wait on the product row, then write the category
    # name from its old snapshot over the rename's: new drift, made by the repair itself.
    await migrate(fresh_db_url, SQL_ROOT / "catalog")
    settings = load_settings(CatalogSettings, service_env(fresh_db_url, redis_server.url))
    renamer = await asyncpg.connect(fresh_db_url)
    async with open_catalog(settings) as catalog:
        category = await categories.create_category(catalog.db, CategoryCreate(name="Old"))
        product = await catalog_products.create_product(
            catalog, ProductCreate(sku="RACE-1", name="Racer", price="1.00", category_id=category.id)
        )
        await renamer.execute("UPDATE products SET category_name = 'Drifted' WHERE id = $1", product.id)
        rename = renamer.transaction()
        await rename.start()
        try:
            await renamer.execute("UPDATE categories SET name = 'New' WHERE id = $1", category.id)
            await renamer.execute(
                "UPDATE products SET category_name = 'New' WHERE category_id = $1", category.id
            )
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(reconcile.repair, catalog)
                await wait_until_another_session_waits_for_a_lock(renamer)
                await rename.commit()
        finally:
            if not renamer.is_closed() and renamer.is_in_transaction():
                await rename.rollback()
        name = await renamer.fetchval("SELECT category_name FROM products WHERE id = $1", product.id)
        assert name == "New"
    await renamer.close()
