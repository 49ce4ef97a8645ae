"""Shortcuts for tests that drive the cart's HTTP API."""

from __future__ import annotations


async def add(cart, user, product_id, quantity=None, **kwargs):
    body = (
        {"product_id": product_id} if quantity is None else {"product_id": product_id, "quantity": quantity}
    )
    return await cart.post(
        "/api/cart/items", json=body, headers={**user, **kwargs.pop("headers", {})}, **kwargs
    )


async def cart_of(cart, user) -> dict:
    response = await cart.get("/api/cart", headers=user)
    assert response.status_code == 200, response.text
    return response.json()
