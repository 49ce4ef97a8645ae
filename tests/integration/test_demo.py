from app_product import demo
from app_product.settings import CatalogSettings
from shared.config import load_settings
from shared.db import create_database
from shared.migrations import SQL_ROOT, migrate
from tests.conftest import service_env


async def test_demo_data_loads_once(fresh_db_url, redis_server):
    await migrate(fresh_db_url, SQL_ROOT / "catalog")
    db = create_database(load_settings(CatalogSettings, service_env(fresh_db_url, redis_server.url)))
    await db.connect()
    try:
        assert await demo.load(db) == demo.PRODUCTS
        assert await demo.load(db) == 0
        assert await db.fetch_val("SELECT count(*) FROM categories") == len(demo.CATEGORIES)
        assert await db.fetch_val("SELECT count(*) FROM products") == demo.PRODUCTS
        assert await db.fetch_val("SELECT count(*) FROM products WHERE category_name IS NULL") == 0
    finally:
        await db.disconnect()


async def test_demo_data_reuses_a_category_named_in_another_case(fresh_db_url, redis_server):
    await migrate(fresh_db_url, SQL_ROOT / "catalog")
    db = create_database(load_settings(CatalogSettings, service_env(fresh_db_url, redis_server.url)))
    await db.connect()
    try:
        await db.execute("INSERT INTO categories (name) VALUES ('shoes')")
        assert await demo.load(db) == demo.PRODUCTS
        assert await db.fetch_val("SELECT count(*) FROM categories") == len(demo.CATEGORIES)
    finally:
        await db.disconnect()
