"""HTTP routes of the shopper's cart and wishlist: authenticate, parse with msgspec, call the
service, encode.

The user is always the token's: no route takes a user id from the path, query or body (bodies
and query strings refuse unknown fields). Writes go through `shared.http.idempotency`, so a client
may send an Idempotency-Key and retry safely.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app_cart.api.schemas import AddItem, AddToWishlist, ApplyPromo, MoveToCart, NoQuery, SetQuantity
from app_cart.services import cart, cart_promo, wishlist
from app_cart.services.context import Context
from shared.http.auth import Principal, require_user
from shared.http.idempotency import Reply, idempotent
from shared.http.json_io import json_response, parse_query, read_json
from shared.http.routing import Endpoint, database, path_id


def context(request: Request) -> Context:
    ctx: Context = request.app.state.cart
    return ctx


def shopper(request: Request) -> Principal:
    """The caller, for a route that takes no query parameters."""
    user = require_user(request)
    if request.scope["query_string"]:
        parse_query(request, NoQuery)  # refuses any parameter
    return user


async def write(request: Request, user: Principal, action: Callable[[], Awaitable[Reply]]) -> Response:
    """Run a write once per Idempotency-Key (see shared.http.idempotency)."""
    ttl = request.app.state.settings.idempotency_ttl_seconds
    return await idempotent(request, database(request), user.user_id, ttl, action)


def ok(call: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Reply]]:
    """A write answering 200 with what `call` returns (the service's view)."""

    async def action() -> Reply:
        return Reply(200, await call())

    return action


class Cart(Endpoint):
    async def get(self, request: Request) -> Response:
        user = shopper(request)
        return json_response(await cart.show_cart(context(request), user.user_id))

    async def delete(self, request: Request) -> Response:
        user = shopper(request)

        async def empty() -> Reply:
            await cart.delete_cart(context(request), user.user_id)
            return Reply(204, None)

        return await write(request, user, empty)


class CartItems(Endpoint):
    async def post(self, request: Request) -> Response:
        user = shopper(request)
        body = await read_json(request, AddItem)
        return await write(
            request,
            user,
            ok(lambda: cart.add_item(context(request), user.user_id, body.product_id, body.quantity)),
        )


class CartItem(Endpoint):
    async def patch(self, request: Request) -> Response:
        user = shopper(request)
        body = await read_json(request, SetQuantity)
        product_id = path_id(request, "product", "product_id")
        return await write(
            request,
            user,
            ok(lambda: cart.set_quantity(context(request), user.user_id, product_id, body.quantity)),
        )

    async def delete(self, request: Request) -> Response:
        user = shopper(request)
        product_id = path_id(request, "product", "product_id")
        return await write(
            request, user, ok(lambda: cart.remove_item(context(request), user.user_id, product_id))
        )


class CartPromo(Endpoint):
    async def post(self, request: Request) -> Response:
        user = shopper(request)
        body = await read_json(request, ApplyPromo)
        return await write(
            request, user, ok(lambda: cart_promo.apply_promo(context(request), user.user_id, body.code))
        )

    async def delete(self, request: Request) -> Response:
        user = shopper(request)
        return await write(request, user, ok(lambda: cart_promo.remove_promo(context(request), user.user_id)))


class Wishlist(Endpoint):
    async def get(self, request: Request) -> Response:
        user = shopper(request)
        return json_response(await wishlist.show_wishlist(context(request), user.user_id))


class WishlistItems(Endpoint):
    async def post(self, request: Request) -> Response:
        user = shopper(request)
        body = await read_json(request, AddToWishlist)

        async def add() -> Reply:
            view, added = await wishlist.add(context(request), user.user_id, body.product_id)
            return Reply(201 if added else 200, view)

        return await write(request, user, add)


class WishlistItem(Endpoint):
    async def delete(self, request: Request) -> Response:
        user = shopper(request)
        product_id = path_id(request, "product", "product_id")
        return await write(
            request, user, ok(lambda: wishlist.remove(context(request), user.user_id, product_id))
        )


class WishlistMove(Endpoint):
    async def post(self, request: Request) -> Response:
        user = shopper(request)
        # The body is optional: moving one is the common case.
        body = await read_json(request, MoveToCart) if await request.body() else MoveToCart()
        product_id = path_id(request, "product", "product_id")
        return await write(
            request,
            user,
            ok(lambda: wishlist.move_to_cart(context(request), user.user_id, product_id, body.quantity)),
        )


routes = [
    Route("/api/cart", Cart),
    Route("/api/cart/items", CartItems),
    Route("/api/cart/items/{product_id:id}", CartItem),
    Route("/api/cart/promo", CartPromo),
    Route("/api/wishlist", Wishlist),
    Route("/api/wishlist/items", WishlistItems),
    Route("/api/wishlist/items/{product_id:id}", WishlistItem),
    Route("/api/wishlist/items/{product_id:id}/move-to-cart", WishlistMove),
]
