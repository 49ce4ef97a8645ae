from app_product.app import open_catalog
from app_product.settings import CatalogSettings
from app_product.tools import demo
from shared.config import load_settings
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.env import service_env


async def test_demo_data_loads_once(fresh_db_url, redis_server):
    await migrate(fresh_db_url, SQL_ROOT / "catalog")
    async with open_catalog(
        load_settings(CatalogSettings, service_env(fresh_db_url, redis_server.url))
    ) as catalog:
        assert await demo.load(catalog) == demo.PRODUCTS
        assert await demo.load(catalog) == 0
        db = catalog.db
        assert await db.fetch_val("SELECT count(*) FROM categories") == len(demo.CATEGORIES)
        assert await db.fetch_val("SELECT count(*) FROM products") == demo.PRODUCTS
        assert await db.fetch_val("SELECT count(*) FROM products WHERE category_name IS NULL") == 0


async def test_demo_data_reuses_a_category_named_in_another_case(fresh_db_url, redis_server):
    await migrate(fresh_db_url, SQL_ROOT / "catalog")
    async with open_catalog(
        load_settings(CatalogSettings, service_env(fresh_db_url, redis_server.url))
    ) as catalog:
        await catalog.db.execute("INSERT INTO categories (name) VALUES ('shoes')")
        assert await demo.load(catalog) == demo.PRODUCTS
        assert await catalog.db.fetch_val("SELECT count(*) FROM categories") == len(demo.CATEGORIES)
