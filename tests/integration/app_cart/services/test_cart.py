"""The cart through its HTTP API, reading products from a real catalog (served in-process)."""

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from tests.conftest import serve_cart
from tests.support.cart_api import add, cart_of
from tests.support.env import as_user
from tests.support.waits import until

PROBLEM = "application/problem+json"


async def test_a_new_user_has_an_empty_cart(cart, user):
    body = await cart_of(cart, user)
    assert body == {
        "items": [],
        "item_count": 0,
        "subtotal": "0.00",
        "discount": "0.00",
        "total": "0.00",
        "promo": None,
        "stale": False,
    }


async def test_add_shows_the_item_with_prices_and_totals(cart, user, new_category, new_product):
    category = await new_category()
    product = await new_product(price="19.99", stock=10, category_id=category["id"])
    response = await add(cart, user, product["id"], 2)
    assert response.status_code == 200
    body = response.json()
    assert body["items"] == [
        {
            "product_id": product["id"],
            "name": product["name"],
            "category_name": category["name"],
            "quantity": 2,
            "unit_price": "19.99",
            "price_when_added": "19.99",
            "price_changed": False,
            "available": True,
            "unavailable_reason": None,
            "line_total": "39.98",
            "stale": False,
        }
    ]
    assert (body["item_count"], body["subtotal"], body["total"]) == (2, "39.98", "39.98")
    assert await cart_of(cart, user) == body


async def test_adding_again_adds_to_the_quantity(cart, user, new_product):
    product = await new_product(stock=10)
    await add(cart, user, product["id"])  # quantity defaults to 1
    body = (await add(cart, user, product["id"], 3)).json()
    assert [item["quantity"] for item in body["items"]] == [4]


async def test_two_tabs_adding_at_once_never_lose_an_update(cart, user, new_product):
    product = await new_product(stock=50)
    responses = await asyncio.gather(*(add(cart, user, product["id"], 2) for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert [item["quantity"] for item in (await cart_of(cart, user))["items"]] == [20]


@pytest.mark.parametrize("quantity", [0, -1, 100, 1000, 10**12, 1.5, "2", True, None])
async def test_bad_quantity_is_refused_and_changes_nothing(cart, user, new_product, quantity):
    product = await new_product(stock=500)
    await add(cart, user, product["id"], 1)
    before = await cart_of(cart, user)
    response = await cart.post(
        "/api/cart/items", json={"product_id": product["id"], "quantity": quantity}, headers=user
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["field"] == "quantity"
    assert await cart_of(cart, user) == before


async def test_quantity_limit_counts_what_is_already_there(cart, user, new_product):
    product = await new_product(stock=500)
    await add(cart, user, product["id"], 60)
    before = await cart_of(cart, user)
    response = await add(cart, user, product["id"], 40)
    assert response.status_code == 422
    assert (response.json()["limit"], response.json()["errors"][0]["field"]) == (99, "quantity")
    assert [item["quantity"] for item in before["items"]] == [60]
    assert await cart_of(cart, user) == before


async def test_unknown_inactive_and_short_products_are_refused(cart, user, new_product):
    inactive = await new_product(is_active=False, stock=5)
    short = await new_product(stock=2)
    unknown = await add(cart, user, 987654321)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "product_id"
    refused = await add(cart, user, inactive["id"])
    assert refused.status_code == 422 and refused.json()["reason"] == "inactive"
    too_many = await add(cart, user, short["id"], 3)
    assert too_many.status_code == 422
    assert (too_many.json()["reason"], too_many.json()["in_stock"]) == ("insufficient_stock", 2)
    assert (await cart_of(cart, user))["items"] == []


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"product_id": ', "application/json", 400),
        (b'{"product_id": "1"}', "application/json", 422),
        (b'{"product_id": -4}', "application/json", 422),
        (b"[]", "application/json", 422),
        (b"product_id=1", "application/x-www-form-urlencoded", 415),
    ],
)
async def test_bad_bodies_are_refused(cart, user, content, content_type, status):
    response = await cart.post(
        "/api/cart/items", content=content, headers={**user, "Content-Type": content_type}
    )
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert (await cart_of(cart, user))["items"] == []


async def test_set_quantity(cart, user, new_product):
    product = await new_product(stock=5)
    await add(cart, user, product["id"], 1)
    url = f"/api/cart/items/{product['id']}"
    assert [
        i["quantity"] for i in (await cart.patch(url, json={"quantity": 4}, headers=user)).json()["items"]
    ] == [4]
    assert [
        i["quantity"] for i in (await cart.patch(url, json={"quantity": 2}, headers=user)).json()["items"]
    ] == [2]
    over_stock = await cart.patch(url, json={"quantity": 6}, headers=user)
    assert over_stock.status_code == 422 and over_stock.json()["reason"] == "insufficient_stock"
    assert (await cart.patch(url, json={"quantity": 0}, headers=user)).status_code == 422
    assert (await cart.patch(url, json={"quantity": 100}, headers=user)).status_code == 422
    missing = await cart.patch("/api/cart/items/987654321", json={"quantity": 1}, headers=user)
    assert missing.status_code == 404
    assert [item["quantity"] for item in (await cart_of(cart, user))["items"]] == [2]


async def test_remove_item_and_clear_cart(cart, user, new_product):
    first, second = await new_product(), await new_product()
    assert (await add(cart, user, first["id"])).status_code == 200
    assert (await add(cart, user, second["id"])).status_code == 200
    response = await cart.delete(f"/api/cart/items/{first['id']}", headers=user)
    assert [item["product_id"] for item in response.json()["items"]] == [second["id"]]
    assert (await cart.delete(f"/api/cart/items/{first['id']}", headers=user)).status_code == 404
    cleared = await cart.delete("/api/cart", headers=user)
    assert (cleared.status_code, cleared.content) == (204, b"")
    assert (await cart_of(cart, user))["items"] == []
    assert (await cart.delete("/api/cart", headers=user)).status_code == 204


async def test_catalog_changes_show_in_the_cart(cart, user, catalog, admin, new_product):
    repriced = await new_product(price="10.00", stock=5)
    retired = await new_product(price="5.00", stock=5)
    deleted = await new_product(price="1.00", stock=5)
    for product in (repriced, retired, deleted):
        await add(cart, user, product["id"], 2)
    await catalog.patch(
        f"/api/products/{repriced['id']}", json={"price": "12.50", "version": 1}, headers=admin
    )
    await catalog.patch(
        f"/api/products/{retired['id']}", json={"is_active": False, "version": 1}, headers=admin
    )
    await catalog.delete(f"/api/products/{deleted['id']}", headers=admin)
    body = await cart_of(cart, user)
    items = {item["product_id"]: item for item in body["items"]}
    assert (items[repriced["id"]]["unit_price"], items[repriced["id"]]["price_when_added"]) == (
        "12.50",
        "10.00",
    )
    assert items[repriced["id"]]["price_changed"] is True
    assert items[repriced["id"]]["line_total"] == "25.00"
    assert (items[retired["id"]]["available"], items[retired["id"]]["unavailable_reason"]) == (
        False,
        "inactive",
    )
    assert (items[deleted["id"]]["available"], items[deleted["id"]]["unavailable_reason"]) == (
        False,
        "deleted",
    )
    # Only what can be bought counts.
    assert (body["subtotal"], body["total"], body["item_count"]) == ("25.00", "25.00", 6)


async def test_a_cart_holds_a_limited_number_of_products(cart_env, catalog_transport, user, new_product):
    async with serve_cart({**cart_env, "MAX_CART_ITEMS": "2"}, catalog_transport) as (_, small):
        products = [await new_product() for _ in range(3)]
        assert (await add(small, user, products[0]["id"])).status_code == 200
        assert (await add(small, user, products[1]["id"])).status_code == 200
        before = await cart_of(small, user)
        refused = await add(small, user, products[2]["id"])
        assert refused.status_code == 422
        assert refused.json()["errors"] == [
            {"field": "product_id", "message": "a cart holds at most 2 different products"}
        ]
        assert await cart_of(small, user) == before
        more = await add(small, user, products[0]["id"])  # more of one it holds
        assert more.status_code == 200
        assert [(i["product_id"], i["quantity"]) for i in more.json()["items"]] == [
            (products[0]["id"], 2),
            (products[1]["id"], 1),
        ]


async def race_behind_a_held_cart(cart_db_url, user_id, calls):
    """Start `calls` together while the test holds the user's cart row (FOR UPDATE, as a slow
    transaction might), release it once each is waiting on a lock or has answered, and return
    their answers. The cart's own lock then has to order them; a write
    that skipped it would still read before anyone wrote, since inserting an item waits on
    this lock too (the item's foreign key): a race that is lost every time, not by luck."""
    gate, watcher = await asyncpg.connect(cart_db_url), await asyncpg.connect(cart_db_url)
    try:
        async with gate.transaction():
            locked = await gate.fetchval("SELECT id FROM carts WHERE user_id = $1 FOR UPDATE", user_id)
            assert locked is not None, "the cart must exist before the race"
            racers = [asyncio.create_task(call) for call in calls]

            async def all_waiting_or_done() -> bool:
                waiting = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                return waiting + sum(racer.done() for racer in racers) >= len(racers)

            await until(all_waiting_or_done)
        return await asyncio.gather(*racers)
    finally:
        await gate.close()
        await watcher.close()


async def an_empty_cart(cart, user, product) -> None:
    """The user's cart exists (so a test can hold its row) and is empty."""
    assert (await add(cart, user, product["id"])).status_code == 200
    assert (await cart.delete(f"/api/cart/items/{product['id']}", headers=user)).status_code == 200
    assert (await cart_of(cart, user))["items"] == []


@pytest.mark.parametrize("held", [True, False], ids=["cart-held", "new-cart"])
async def test_concurrent_adds_of_different_products_never_pass_the_item_limit(
    cart_env, catalog_transport, cart_db_url, new_product, held
):
    limit = 3
    user_id = f"item-limit-{uuid.uuid4().hex[:10]}"
    user = as_user(user_id)
    products = [await new_product(stock=10) for _ in range(limit + 5)]
    async with serve_cart({**cart_env, "MAX_CART_ITEMS": str(limit)}, catalog_transport) as (_, small):
        if held:
            await an_empty_cart(small, user, products[0])
        adds = [add(small, user, product["id"], 1) for product in products]
        if held:
            responses = await race_behind_a_held_cart(cart_db_url, user_id, adds)
        else:  # the first add creates the cart while the others wait for it
            responses = await asyncio.gather(*adds)
        answers = [(r.status_code, r.text) for r in responses]
        assert sorted(r.status_code for r in responses) == [200] * limit + [422] * 5, answers
        for response in responses:
            if response.status_code == 422:
                assert response.json()["errors"] == [
                    {"field": "product_id", "message": f"a cart holds at most {limit} different products"}
                ]
        added = {p["id"] for p, r in zip(products, responses, strict=True) if r.status_code == 200}
        body = await cart_of(small, user)
    assert {(i["product_id"], i["quantity"]) for i in body["items"]} == {(pid, 1) for pid in added}
    assert len(body["items"]) == limit


@pytest.mark.parametrize("held", [True, False], ids=["cart-held", "new-cart"])
async def test_concurrent_adds_of_one_product_never_pass_the_quantity_limit(
    cart_env, catalog_transport, cart_db_url, new_product, held
):
    user_id = f"quantity-limit-{uuid.uuid4().hex[:10]}"
    user = as_user(user_id)
    product = await new_product(stock=100)
    async with serve_cart({**cart_env, "MAX_ITEM_QUANTITY": "10"}, catalog_transport) as (_, capped):
        if held:
            await an_empty_cart(capped, user, product)
        adds = [add(capped, user, product["id"], 3) for _ in range(8)]
        if held:
            responses = await race_behind_a_held_cart(cart_db_url, user_id, adds)
        else:
            responses = await asyncio.gather(*adds)
        answers = [(r.status_code, r.text) for r in responses]
        assert {r.status_code for r in responses} <= {200, 422}, answers
        for response in responses:
            if response.status_code == 422:
                body = response.json()
                assert (body["limit"], body["errors"][0]["field"]) == (10, "quantity"), answers
        accepted = sum(r.status_code == 200 for r in responses)
        items = (await cart_of(capped, user))["items"]
    # Whichever order they ran in, 3 + 3 + 3 fit and a fourth would make 12.
    assert (accepted, [(i["product_id"], i["quantity"]) for i in items]) == (3, [(product["id"], 9)])


class DeadCatalog(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


async def test_catalog_down_gives_503_and_changes_nothing_but_reads_still_work(
    cart, cart_env, user, new_product
):
    product = await new_product(price="3.00", stock=5)
    assert (await add(cart, user, product["id"], 2)).status_code == 200
    async with serve_cart(cart_env, DeadCatalog()) as (_, dead):
        refused = await add(dead, user, product["id"], 1)
        assert refused.status_code == 503
        assert refused.json()["type"].endswith("catalog-unavailable")
        increase = await dead.patch(f"/api/cart/items/{product['id']}", json={"quantity": 3}, headers=user)
        assert increase.status_code == 503
        # Reads come from the shared product cache, still fresh: nothing stale to report.
        body = await cart_of(dead, user)
        assert (body["stale"], [(i["quantity"], i["unit_price"]) for i in body["items"]]) == (
            False,
            [(2, "3.00")],
        )
        # Taking less needs no catalog.
        decrease = await dead.patch(f"/api/cart/items/{product['id']}", json={"quantity": 1}, headers=user)
        assert decrease.status_code == 200
        assert [i["quantity"] for i in decrease.json()["items"]] == [1]
    # With an empty cache too (another prefix), the item row's own snapshot is shown, marked.
    async with serve_cart({**cart_env, "REDIS_KEY_PREFIX": "empty-cache"}, DeadCatalog()) as (_, cold):
        body = await cart_of(cold, user)
        assert body["stale"] is True
        assert [(i["quantity"], i["unit_price"], i["stale"]) for i in body["items"]] == [(1, "3.00", True)]


async def test_every_cart_route_needs_a_token(cart):
    for method, url in [
        ("GET", "/api/cart"),
        ("DELETE", "/api/cart"),
        ("POST", "/api/cart/items"),
        ("PATCH", "/api/cart/items/1"),
        ("DELETE", "/api/cart/items/1"),
        ("POST", "/api/cart/promo"),
        ("DELETE", "/api/cart/promo"),
        ("GET", "/api/wishlist"),
        ("POST", "/api/wishlist/items"),
        ("DELETE", "/api/wishlist/items/1"),
        ("POST", "/api/wishlist/items/1/move-to-cart"),
    ]:
        response = await cart.request(method, url, json={})
        assert response.status_code == 401, (method, url)
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_one_user_cannot_see_or_touch_another_users_cart(cart, new_product):
    alice, mallory = as_user("alice-iso"), as_user("mallory-iso")
    await cart.delete("/api/cart", headers=alice)
    product = await new_product(stock=10)
    await add(cart, alice, product["id"], 3)
    alices_cart = await cart_of(cart, alice)

    assert (await cart_of(cart, mallory))["items"] == []
    # Through the query string, the body and the path: refused or simply mallory's own.
    assert (await cart.get("/api/cart?user_id=alice-iso", headers=mallory)).status_code == 400
    smuggled = await cart.post(
        "/api/cart/items", json={"product_id": product["id"], "user_id": "alice-iso"}, headers=mallory
    )
    assert smuggled.status_code == 422 and smuggled.json()["errors"][0]["field"] == "user_id"
    assert (await cart.get("/api/cart/alice-iso", headers=mallory)).status_code == 404
    assert (await cart.delete(f"/api/cart/items/{product['id']}", headers=mallory)).status_code == 404
    assert (
        await cart.patch(f"/api/cart/items/{product['id']}", json={"quantity": 9}, headers=mallory)
    ).status_code == 404
    await cart.delete("/api/cart", headers=mallory)
    assert await cart_of(cart, alice) == alices_cart


class CountingDeadCatalog(DeadCatalog):
    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return await super().handle_async_request(request)


async def test_an_open_breaker_answers_503_with_retry_after_without_calling_the_catalog(
    cart, cart_env, user, new_product
):
    product = await new_product(stock=5)
    assert (await add(cart, user, product["id"])).status_code == 200
    dead = CountingDeadCatalog()
    env = {**cart_env, "BREAKER_MIN_CALLS": "3", "BREAKER_RECOVERY_SECONDS": "60"}
    async with serve_cart(env, dead) as (_, failing):
        # With the successful add above, two failures make 2 of 3 calls: the breaker opens.
        for _ in range(2):
            assert (await add(failing, user, product["id"])).status_code == 503
        assert dead.calls == 2
        refused = await add(failing, user, product["id"])
        assert refused.status_code == 503
        assert 50 <= int(refused.headers["retry-after"]) <= 60
        assert dead.calls == 2  # the breaker answered; the catalog was not called
        body = await cart_of(failing, user)  # reads still work, from the product cache
        assert [i["quantity"] for i in body["items"]] == [1]
    # The breaker lives in Redis: the healthy app sharing the prefix sees it open too.
    assert (await add(cart, user, product["id"])).status_code == 503


async def test_the_item_upsert_itself_refuses_to_pass_the_quantity_limit(cart_db_url):
    """The statement's own guard, beneath the service's checks (which the cart row lock keeps
    exact): an add that would pass the limit changes nothing, one that reaches it is taken."""
    from databases import Database

    from app_cart.adapters import carts

    db = Database(cart_db_url)
    await db.connect()
    try:
        user_id = f"upsert-{uuid.uuid4().hex[:10]}"
        cart_id = await db.fetch_val("INSERT INTO carts (user_id) VALUES (:u) RETURNING id", {"u": user_id})
        product_id = 900_000 + int(uuid.uuid4().int % 99_999)
        snapshot = {"product_id": product_id, "name": "Capped", "category_name": None, "category_id": None}
        snapshot |= {"price": 1, "is_available": True, "version": 1}
        assert await carts.add_item(db, cart_id, snapshot, 7, limit=10) == 7
        assert await carts.add_item(db, cart_id, snapshot, 4, limit=10) is None  # 11: one too many
        assert await carts.item_quantity(db, cart_id, product_id) == 7
        assert await carts.add_item(db, cart_id, snapshot, 3, limit=10) == 10  # exactly the limit
    finally:
        await db.disconnect()
