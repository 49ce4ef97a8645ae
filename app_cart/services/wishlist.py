"""The wishlist: products a shopper keeps for later, and moving one into the cart.

Adding is idempotent (a product is on the list once). Moving to the cart is one transaction:
the product leaves the wishlist and enters the cart, or, if anything refuses (the product is no
longer for sale, the cart is full, the quantity is over a limit), neither changes.
"""

from __future__ import annotations

from databases import Database

from app_cart.adapters import carts, wishlists
from app_cart.domain.availability import DELETED, wishlist_refusal
from app_cart.services.cart import (
    add_to_locked_cart,
    check_quantity_limit,
    current_products,
    get_cart,
    require_buyable,
    snapshot,
)
from app_cart.services.context import Context
from app_cart.services.models import CartView, WishlistView
from app_cart.services.views import wishlist_view
from shared.errors import NotFound, invalid
from shared.storage.postgres import ReadPool

MAX_WISHLIST_ITEMS = 100


async def get_wishlist(ctx: Context, user_id: str) -> WishlistView:
    """As the calling task's connection sees it (see cart.get_cart)."""
    return await _wishlist(ctx, user_id, ctx.db)


async def show_wishlist(ctx: Context, user_id: str) -> WishlistView:
    """Read on the read pool: for a request that writes nothing."""
    return await _wishlist(ctx, user_id, ctx.reads)


async def _wishlist(ctx: Context, user_id: str, source: Database | ReadPool) -> WishlistView:
    rows = await wishlists.wishlist_rows(source, user_id)
    return wishlist_view(rows, await current_products(ctx, (row["product_id"] for row in rows)))


async def add(ctx: Context, user_id: str, product_id: int) -> tuple[WishlistView, bool]:
    """Put the product on the wishlist; the wishlist, and whether it was added (not there yet)."""
    product = await ctx.products.get(product_id)
    reason = wishlist_refusal(product)
    if product is None or reason == DELETED:
        raise invalid("product_id", f"no product has id {product_id}")
    if reason is not None:
        raise invalid("product_id", f"product {product_id} is not for sale", reason=reason)
    async with ctx.db.transaction():
        wishlist_id = await wishlists.lock_wishlist(ctx.db, user_id)
        if await wishlists.wishlist_size(ctx.db, wishlist_id) >= MAX_WISHLIST_ITEMS:
            raise invalid("product_id", f"a wishlist holds at most {MAX_WISHLIST_ITEMS} products")
        added = await wishlists.add_wishlist_item(ctx.db, wishlist_id, snapshot(product))
    return await get_wishlist(ctx, user_id), added


async def remove(ctx: Context, user_id: str, product_id: int) -> WishlistView:
    if not await wishlists.remove_wishlist_item(ctx.db, user_id, product_id):
        raise NotFound(f"Product {product_id} is not on your wishlist.")
    return await get_wishlist(ctx, user_id)


async def move_to_cart(ctx: Context, user_id: str, product_id: int, quantity: int) -> CartView:
    check_quantity_limit(ctx, quantity)
    product = require_buyable(await ctx.products.get(product_id), product_id, quantity)
    async with ctx.db.transaction():
        if not await wishlists.remove_wishlist_item(ctx.db, user_id, product_id):
            raise NotFound(f"Product {product_id} is not on your wishlist.")
        cart_id = await carts.lock_cart(ctx.db, user_id)
        await add_to_locked_cart(ctx, cart_id, product, quantity)
    return await get_cart(ctx, user_id)
