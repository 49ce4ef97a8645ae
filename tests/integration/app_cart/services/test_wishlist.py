"""Wishlists: idempotent adds, current prices, and moving an item to the cart in one transaction."""

from tests.conftest import serve_cart
from tests.support.cart_api import add, cart_of


async def wishlist_of(cart, user) -> list[dict]:
    response = await cart.get("/api/wishlist", headers=user)
    assert response.status_code == 200
    return list(response.json()["items"])


async def test_adding_twice_keeps_one(cart, user, new_product):
    product = await new_product(price="8.00")
    first = await cart.post("/api/wishlist/items", json={"product_id": product["id"]}, headers=user)
    again = await cart.post("/api/wishlist/items", json={"product_id": product["id"]}, headers=user)
    assert (first.status_code, again.status_code) == (201, 200)
    items = await wishlist_of(cart, user)
    assert [(i["product_id"], i["price"], i["available"]) for i in items] == [(product["id"], "8.00", True)]


async def test_unknown_and_inactive_products_are_refused(cart, user, new_product):
    inactive = await new_product(is_active=False)
    for product_id, message, reason in (
        (987654321, "no product has id 987654321", None),
        (inactive["id"], f"product {inactive['id']} is not for sale", "inactive"),
    ):
        response = await cart.post("/api/wishlist/items", json={"product_id": product_id}, headers=user)
        assert response.status_code == 422
        body = response.json()
        assert body["errors"] == [{"field": "product_id", "message": message}]
        assert body.get("reason") == reason
    assert await wishlist_of(cart, user) == []


async def test_out_of_stock_products_may_be_wished_for(cart, user, new_product):
    product = await new_product(stock=0)
    assert (
        await cart.post("/api/wishlist/items", json={"product_id": product["id"]}, headers=user)
    ).status_code == 201
    assert [i["unavailable_reason"] for i in await wishlist_of(cart, user)] == ["out_of_stock"]


async def test_price_changes_show(cart, user, catalog, admin, new_product):
    product = await new_product(price="8.00")
    await cart.post("/api/wishlist/items", json={"product_id": product["id"]}, headers=user)
    await catalog.patch(f"/api/products/{product['id']}", json={"price": "6.00", "version": 1}, headers=admin)
    [item] = await wishlist_of(cart, user)
    assert (item["price"], item["price_when_added"], item["price_changed"]) == ("6.00", "8.00", True)


async def test_remove(cart, user, new_product):
    product = await new_product()
    await cart.post("/api/wishlist/items", json={"product_id": product["id"]}, headers=user)
    assert (await cart.delete(f"/api/wishlist/items/{product['id']}", headers=user)).status_code == 200
    assert (await cart.delete(f"/api/wishlist/items/{product['id']}", headers=user)).status_code == 404
    assert await wishlist_of(cart, user) == []


async def test_move_to_cart(cart, user, new_product):
    product = await new_product(stock=5)
    await cart.post("/api/wishlist/items", json={"product_id": product["id"]}, headers=user)
    moved = await cart.post(f"/api/wishlist/items/{product['id']}/move-to-cart", headers=user)
    assert moved.status_code == 200
    assert [(i["product_id"], i["quantity"]) for i in moved.json()["items"]] == [(product["id"], 1)]
    assert await wishlist_of(cart, user) == []
    again = await cart.post(f"/api/wishlist/items/{product['id']}/move-to-cart", headers=user)
    assert again.status_code == 404


async def test_move_with_a_quantity_adds_to_the_cart(cart, user, new_product):
    product = await new_product(stock=5)
    await add(cart, user, product["id"], 1)
    await cart.post("/api/wishlist/items", json={"product_id": product["id"]}, headers=user)
    moved = await cart.post(
        f"/api/wishlist/items/{product['id']}/move-to-cart", json={"quantity": 2}, headers=user
    )
    assert [i["quantity"] for i in moved.json()["items"]] == [3]


async def test_move_of_a_product_no_longer_for_sale_changes_nothing(cart, user, catalog, admin, new_product):
    product = await new_product(stock=5)
    await cart.post("/api/wishlist/items", json={"product_id": product["id"]}, headers=user)
    await catalog.patch(
        f"/api/products/{product['id']}", json={"is_active": False, "version": 1}, headers=admin
    )
    wished, carted = await wishlist_of(cart, user), await cart_of(cart, user)
    response = await cart.post(f"/api/wishlist/items/{product['id']}/move-to-cart", headers=user)
    assert response.status_code == 422 and response.json()["reason"] == "inactive"
    assert await wishlist_of(cart, user) == wished
    assert await cart_of(cart, user) == carted


async def test_move_refused_by_the_cart_leaves_the_wishlist_alone(cart, user, new_product):
    # The refusal comes inside the transaction (the cart already holds the maximum): the
    # wishlist delete that ran first must roll back with it.
    product = await new_product(stock=500)
    await add(cart, user, product["id"], 99)
    await cart.post("/api/wishlist/items", json={"product_id": product["id"]}, headers=user)
    wished, carted = await wishlist_of(cart, user), await cart_of(cart, user)
    response = await cart.post(f"/api/wishlist/items/{product['id']}/move-to-cart", headers=user)
    assert response.status_code == 422
    assert (response.json()["limit"], response.json()["errors"][0]["field"]) == (99, "quantity")
    assert [i["product_id"] for i in wished] == [product["id"]]
    assert [i["quantity"] for i in carted["items"]] == [99]
    assert await wishlist_of(cart, user) == wished
    assert await cart_of(cart, user) == carted


async def test_move_into_a_full_cart_changes_nothing(cart_env, catalog_transport, user, new_product):
    # The cart's item limit refuses inside the move's transaction, after the wishlist delete.
    held, wished_for = await new_product(stock=5), await new_product(stock=5)
    async with serve_cart({**cart_env, "MAX_CART_ITEMS": "1"}, catalog_transport) as (_, small):
        assert (await add(small, user, held["id"])).status_code == 200
        added = await small.post("/api/wishlist/items", json={"product_id": wished_for["id"]}, headers=user)
        assert added.status_code == 201
        wished, carted = await wishlist_of(small, user), await cart_of(small, user)
        response = await small.post(f"/api/wishlist/items/{wished_for['id']}/move-to-cart", headers=user)
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"field": "product_id", "message": "a cart holds at most 1 different products"}
        ]
        assert [i["product_id"] for i in wished] == [wished_for["id"]]
        assert [(i["product_id"], i["quantity"]) for i in carted["items"]] == [(held["id"], 1)]
        assert await wishlist_of(small, user) == wished
        assert await cart_of(small, user) == carted
