"""Idempotency-Key: a retried write answers as the first time and changes nothing."""

import asyncio

from tests.support.cart_api import cart_of
from tests.support.env import as_user


async def add_with_key(cart, user, product_id, key, quantity=1):
    return await cart.post(
        "/api/cart/items",
        json={"product_id": product_id, "quantity": quantity},
        headers={**user, "Idempotency-Key": key},
    )


async def test_a_retried_add_adds_once_and_answers_the_same(cart, user, new_product):
    product = await new_product(stock=10)
    first = await add_with_key(cart, user, product["id"], "retry-1", 2)
    second = await add_with_key(cart, user, product["id"], "retry-1", 2)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.content == first.content
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert [item["quantity"] for item in (await cart_of(cart, user))["items"]] == [2]


async def test_an_idempotent_write_answers_with_its_own_change(cart, user, new_product):
    # The answer is stored in the key's transaction, so the cart is read there, before the
    # commit; read on the read pool (cart.show_cart) it would not hold the new item yet.
    product = await new_product(stock=10)
    answer = (await add_with_key(cart, user, product["id"], "own-change", 3)).json()
    assert [(item["product_id"], item["quantity"]) for item in answer["items"]] == [(product["id"], 3)]


async def test_concurrent_retries_with_one_key_add_once(cart, user, new_product):
    product = await new_product(stock=10)
    responses = await asyncio.gather(*(add_with_key(cart, user, product["id"], "burst-1") for _ in range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.content for r in responses}) == 1
    assert [item["quantity"] for item in (await cart_of(cart, user))["items"]] == [1]


async def test_the_same_key_for_another_request_is_a_422(cart, user, new_product):
    first, second = await new_product(stock=10), await new_product(stock=10)
    assert (await add_with_key(cart, user, first["id"], "reused")).status_code == 200
    other_body = await add_with_key(cart, user, first["id"], "reused", quantity=5)
    other_route = await cart.delete(
        f"/api/cart/items/{first['id']}", headers={**user, "Idempotency-Key": "reused"}
    )
    other_product = await add_with_key(cart, user, second["id"], "reused")
    assert [r.status_code for r in (other_body, other_route, other_product)] == [422, 422, 422]
    assert [(i["product_id"], i["quantity"]) for i in (await cart_of(cart, user))["items"]] == [
        (first["id"], 1)
    ]


async def test_keys_belong_to_one_user(cart, new_product):
    product = await new_product(stock=10)
    alice, bob = as_user("alice-idem"), as_user("bob-idem")
    for user in (alice, bob):
        await cart.delete("/api/cart", headers=user)
        assert (await add_with_key(cart, user, product["id"], "shared-key")).status_code == 200
    for user in (alice, bob):
        assert [item["quantity"] for item in (await cart_of(cart, user))["items"]] == [1]


async def test_a_refused_request_is_not_remembered(cart, user, catalog, admin, new_product):
    product = await new_product(stock=1)
    refused = await add_with_key(cart, user, product["id"], "after-restock", quantity=3)
    assert refused.status_code == 422
    await catalog.patch(f"/api/products/{product['id']}", json={"stock": 5, "version": 1}, headers=admin)
    retried = await add_with_key(cart, user, product["id"], "after-restock", quantity=3)
    assert retried.status_code == 200
    assert [item["quantity"] for item in (await cart_of(cart, user))["items"]] == [3]


async def test_a_retried_delete_of_the_cart_replays_204(cart, user, new_product):
    product = await new_product(stock=10)
    await add_with_key(cart, user, product["id"], "before-delete")
    headers = {**user, "Idempotency-Key": "delete-1"}
    first, second = (
        await cart.delete("/api/cart", headers=headers),
        await cart.delete("/api/cart", headers=headers),
    )
    assert (first.status_code, first.content, second.status_code, second.content) == (204, b"", 204, b"")


async def test_bad_keys_are_refused(cart, user, new_product):
    product = await new_product(stock=10)
    for key in ("", "has space", "x" * 256, "caf\u00e9"):
        response = await cart.post(
            "/api/cart/items",
            json={"product_id": product["id"]},
            headers={**user, "Idempotency-Key": key.encode("utf-8")},
        )
        assert response.status_code == 400, key
    assert (await cart_of(cart, user))["items"] == []


async def test_expired_keys_are_pruned_and_reusable(cart_app, cart, user, new_product):
    from shared.http.idempotency import prune

    product = await new_product(stock=10)
    await add_with_key(cart, user, product["id"], "old-key")
    db = cart_app.state.db
    await db.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '2 days' WHERE key = 'old-key'"
    )
    # An expired key no longer replays: the request runs again.
    await add_with_key(cart, user, product["id"], "old-key")
    assert [item["quantity"] for item in (await cart_of(cart, user))["items"]] == [2]
    await db.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '2 days' WHERE key = 'old-key'"
    )
    assert await prune(db, ttl_seconds=86400) >= 1
    assert await db.fetch_val("SELECT count(*) FROM idempotency_keys WHERE key = 'old-key'") == 0
