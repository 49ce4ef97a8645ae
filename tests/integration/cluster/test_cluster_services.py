"""The catalog, the cart, the relay and the worker with REDIS_CLUSTER=true on a 3+3 cluster: the
shopper's flow, a price change reaching the cart through the stream, the pipeline's health."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app_cart.adapters.catalog_client import catalog_client
from app_cart.app import create_app as create_cart_app
from app_cart.settings import CartSettings
from app_cart.worker.run import cart_worker
from app_product.app import create_app as create_catalog_app
from app_product.outbox.relay import Relay
from app_product.settings import CatalogSettings
from shared.config import load_settings
from shared.storage.migrations import SQL_ROOT, migrate
from shared.storage.postgres import create_database
from shared.storage.redis_conn import create_redis
from tests.support.env import as_user, make_token, service_env

ADMIN = {"Authorization": f"Bearer {make_token('admin-cluster', roles=('admin',))}"}
SERVICE = {"Authorization": f"Bearer {make_token('svc', roles=('service',))}"}


class Shop:
    catalog: httpx.AsyncClient
    cart: httpx.AsyncClient
    catalog_settings: CatalogSettings
    cart_settings: CartSettings
    catalog_transport: httpx.ASGITransport

    async def relay_and_apply(self) -> int:
        """Relay what the catalog committed, then let a worker apply it; events applied."""
        redis = create_redis(self.cart_settings)
        db = create_database(self.cart_settings)
        await db.connect()
        products = catalog_client(self.cart_settings, redis, self.catalog_transport)
        try:
            await Relay(self.catalog_settings, redis).run(asyncio.Event(), burst=True)
            worker = cart_worker(self.cart_settings, db, redis, "cluster-worker", products)
            await worker.run(asyncio.Event(), burst=True)
            assert worker.failed == 0
            return worker.applied
        finally:
            await products.aclose()
            await db.disconnect()
            await redis.aclose()


@pytest.fixture
async def shop(postgres, redis_cluster) -> AsyncIterator[Shop]:
    catalog_db, cart_db = (postgres.url(f"cl_{uuid.uuid4().hex[:10]}") for _ in range(2))
    await migrate(catalog_db, SQL_ROOT / "catalog")
    await migrate(cart_db, SQL_ROOT / "cart")
    common: dict[str, Any] = {"REDIS_CLUSTER": "true", "REDIS_KEY_PREFIX": f"c{uuid.uuid4().hex[:8]}"}
    shop = Shop()
    shop.catalog_settings = load_settings(
        CatalogSettings, service_env(catalog_db, redis_cluster.url, **common)
    )
    shop.cart_settings = load_settings(
        CartSettings, service_env(cart_db, redis_cluster.url, CATALOG_URL="http://catalog", **common)
    )
    catalog_app = create_catalog_app(shop.catalog_settings)
    async with catalog_app.router.lifespan_context(catalog_app):
        shop.catalog_transport = httpx.ASGITransport(app=catalog_app)
        cart_app = create_cart_app(shop.cart_settings, catalog_transport=shop.catalog_transport)
        async with (
            cart_app.router.lifespan_context(cart_app),
            httpx.AsyncClient(transport=shop.catalog_transport, base_url="http://catalog") as catalog,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=cart_app), base_url="http://cart") as cart,
        ):
            shop.catalog, shop.cart = catalog, cart
            yield shop


async def test_a_shopper_and_a_price_change_on_the_cluster(shop):
    catalog, cart, user = shop.catalog, shop.cart, as_user(f"u-{uuid.uuid4().hex[:6]}")
    made = []
    for n in range(6):  # ids over several cache shards, so over the masters
        body = {"sku": f"CL-{uuid.uuid4().hex[:6]}", "name": f"Boot {n}", "price": "10.00", "stock": 5}
        response = await catalog.post("/api/products", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        made.append(response.json())
    for product in made:
        added = await cart.post(
            "/api/cart/items", json={"product_id": product["id"], "quantity": 1}, headers=user
        )
        assert added.status_code == 200, added.text
    read = await cart.get("/api/cart", headers=user)
    assert read.status_code == 200 and {i["product_id"] for i in read.json()["items"]} == {
        p["id"] for p in made
    }

    first = made[0]
    patched = await catalog.patch(
        f"/api/products/{first['id']}", json={"price": "12.50", "version": first["version"]}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    assert await shop.relay_and_apply() >= 7  # six creations and the change
    items = {i["product_id"]: i for i in (await cart.get("/api/cart", headers=user)).json()["items"]}
    assert items[first["id"]]["unit_price"] == "12.50"

    health = await cart.get("/internal/health", headers=SERVICE)
    assert health.status_code == 200, health.text
    assert health.json()["pending"] == 0 and health.json()["dead"] == 0
    scraper = {"Authorization": f"Bearer {make_token('prometheus', roles=('metrics',))}"}
    metrics = await cart.get("/metrics", headers=scraper)
    # A cluster client has a pool per node it knows (the masters, and replicas once it has
    # seen them): the gauge sums them.
    limit = shop.cart_settings.redis_max_connections
    gauge = next(line for line in metrics.text.splitlines() if line.startswith("storefront_redis_pool_max"))
    assert float(gauge.split()[1]) in {n * limit for n in range(3, 7)}
