"""HTTP routes of the cart service: authenticate, parse with msgspec, call the service, encode.

The user is always the token's: no route takes a user id from the path, query or body (bodies
and query strings refuse unknown fields). Writes go through `shared.idempotency`, so a client
may send an Idempotency-Key and retry safely.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app_cart import cart, promos, wishlist
from app_cart.cart import Context
from app_cart.schemas import (
    AddItem,
    AddToWishlist,
    ApplyPromo,
    MoveToCart,
    NoQuery,
    PromoCreate,
    PromoPatch,
    PromoQuery,
    SetQuantity,
)
from shared.auth import Principal, require_role, require_user
from shared.http_json import json_response, parse_query, read_json
from shared.idempotency import Reply, idempotent
from shared.routing import database, path_id
from shared.versioning import etag, required_version

ADMIN = "admin"


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
    ttl = request.app.state.settings.idempotency_ttl_seconds
    return await idempotent(request, database(request), user.user_id, ttl, action)


class Cart(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        user = shopper(request)
        return json_response(await cart.show_cart(context(request), user.user_id))

    async def delete(self, request: Request) -> Response:
        user = shopper(request)
        return await write(request, user, lambda: cart.delete_cart(context(request), user.user_id))


class CartItems(HTTPEndpoint):
    async def post(self, request: Request) -> Response:
        user = shopper(request)
        body = await read_json(request, AddItem)
        return await write(request, user, lambda: cart.add_item(context(request), user.user_id, body))


class CartItem(HTTPEndpoint):
    async def patch(self, request: Request) -> Response:
        user = shopper(request)
        body = await read_json(request, SetQuantity)
        product_id = path_id(request, "product", "product_id")
        return await write(
            request,
            user,
            lambda: cart.set_quantity(context(request), user.user_id, product_id, body.quantity),
        )

    async def delete(self, request: Request) -> Response:
        user = shopper(request)
        product_id = path_id(request, "product", "product_id")
        return await write(
            request, user, lambda: cart.remove_item(context(request), user.user_id, product_id)
        )


class CartPromo(HTTPEndpoint):
    async def post(self, request: Request) -> Response:
        user = shopper(request)
        body = await read_json(request, ApplyPromo)
        return await write(request, user, lambda: cart.apply_promo(context(request), user.user_id, body.code))

    async def delete(self, request: Request) -> Response:
        user = shopper(request)
        return await write(request, user, lambda: cart.remove_promo(context(request), user.user_id))


class Wishlist(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        user = shopper(request)
        return json_response(await wishlist.show_wishlist(context(request), user.user_id))


class WishlistItems(HTTPEndpoint):
    async def post(self, request: Request) -> Response:
        user = shopper(request)
        body = await read_json(request, AddToWishlist)
        return await write(
            request, user, lambda: wishlist.add(context(request), user.user_id, body.product_id)
        )


class WishlistItem(HTTPEndpoint):
    async def delete(self, request: Request) -> Response:
        user = shopper(request)
        product_id = path_id(request, "product", "product_id")
        return await write(request, user, lambda: wishlist.remove(context(request), user.user_id, product_id))


class WishlistMove(HTTPEndpoint):
    async def post(self, request: Request) -> Response:
        user = shopper(request)
        # The body is optional: moving one is the common case.
        body = await read_json(request, MoveToCart) if await request.body() else MoveToCart()
        product_id = path_id(request, "product", "product_id")
        return await write(
            request,
            user,
            lambda: wishlist.move_to_cart(context(request), user.user_id, product_id, body.quantity),
        )


class PromoCodes(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        require_role(request, ADMIN)
        query = parse_query(request, PromoQuery)
        return json_response(await promos.list_page(database(request), query))

    async def post(self, request: Request) -> Response:
        admin = require_role(request, ADMIN)
        parse_query(request, NoQuery)
        body = await read_json(request, PromoCreate)

        async def create() -> Reply:
            return Reply(201, await promos.create(database(request), body))

        return await write(request, admin, create)


class PromoCodeItem(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        require_role(request, ADMIN)
        promo = await promos.get(database(request), path_id(request, "promo code"))
        return json_response(promo, headers={"ETag": etag(promo.version)})

    async def patch(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, PromoPatch)
        expected = required_version(request, body.version)
        promo = await promos.update(database(request), path_id(request, "promo code"), body, expected)
        return json_response(promo, headers={"ETag": etag(promo.version)})

    async def delete(self, request: Request) -> Response:
        require_role(request, ADMIN)
        await promos.deactivate(database(request), path_id(request, "promo code"))
        return Response(status_code=204)


routes = [
    Route("/api/cart", Cart),
    Route("/api/cart/items", CartItems),
    Route("/api/cart/items/{product_id:id}", CartItem),
    Route("/api/cart/promo", CartPromo),
    Route("/api/wishlist", Wishlist),
    Route("/api/wishlist/items", WishlistItems),
    Route("/api/wishlist/items/{product_id:id}", WishlistItem),
    Route("/api/wishlist/items/{product_id:id}/move-to-cart", WishlistMove),
    Route("/api/promo-codes", PromoCodes),
    Route("/api/promo-codes/{id:id}", PromoCodeItem),
]
