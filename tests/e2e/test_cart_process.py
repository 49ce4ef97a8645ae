"""The cart and the catalog as two real processes talking HTTP, as in production."""

import uuid

import httpx
import pytest

from tests.conftest import as_user, make_token
from tests.e2e.conftest import prepare, running_cart, running_catalog, wait_until

pytestmark = pytest.mark.e2e


def test_the_cart_reads_the_catalog_over_http_and_survives_it_going_down(postgres, redis_server):
    catalog_db, cart_db = (
        postgres.url(f"e2e_{uuid.uuid4().hex[:8]}"),
        postgres.url(f"e2e_{uuid.uuid4().hex[:8]}"),
    )
    prepare(catalog_db, redis_server.url, "catalog")
    prepare(cart_db, redis_server.url, "cart")
    admin = {"Authorization": f"Bearer {make_token('admin-1', roles=('admin',))}"}
    shopper = as_user("e2e-shopper")
    with (
        running_catalog(catalog_db, redis_server.url) as (catalog_url, catalog_process),
        # Cache entries go stale after 0.3 s, so the outage below shows stale-if-error.
        running_cart(cart_db, redis_server.url, catalog_url, CACHE_TTL_SECONDS="0.3") as (cart_url, _),
        httpx.Client(base_url=catalog_url, timeout=5) as catalog,
        httpx.Client(base_url=cart_url, timeout=5) as cart,
    ):
        product = catalog.post(
            "/api/products",
            json={"sku": "E2E-CART", "name": "Wire", "price": "4.25", "stock": 9},
            headers=admin,
        ).json()
        added = cart.post(
            "/api/cart/items", json={"product_id": product["id"], "quantity": 2}, headers=shopper
        )
        assert added.status_code == 200
        assert (added.json()["subtotal"], added.json()["items"][0]["name"]) == ("8.50", "Wire")

        catalog.patch(f"/api/products/{product['id']}", json={"price": "5.00", "version": 1}, headers=admin)
        item = cart.get("/api/cart", headers=shopper).json()["items"][0]
        assert (item["unit_price"], item["price_changed"]) == ("5.00", True)

        catalog_process.kill()
        catalog_process.wait(timeout=10)
        # Until the entry goes stale it is served fresh; then stale, with the last known price.
        wait_until(lambda: cart.get("/api/cart", headers=shopper).json()["stale"])
        stale = cart.get("/api/cart", headers=shopper).json()
        assert (stale["items"][0]["quantity"], stale["items"][0]["unit_price"]) == (2, "5.00")
        assert stale["items"][0]["stale"] is True
        refused = cart.post("/api/cart/items", json={"product_id": product["id"]}, headers=shopper)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert cart.get("/api/cart", headers=shopper).json()["items"][0]["quantity"] == 2
