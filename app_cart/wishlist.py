"""The wishlist: products a shopper keeps for later, and moving one into the cart.

Adding is idempotent (a product is on the list once). Moving to the cart is one transaction:
the product leaves the wishlist and enters the cart, or, if anything refuses (the product is no
longer for sale, the cart is full, the quantity is over a limit), neither changes.
"""

from __future__ import annotations

from databases import Database

from app_cart import repo
from app_cart.cart import (
    Context,
    add_to_locked_cart,
    check_quantity_limit,
    current_products,
    get_cart,
    invalid,
    require_buyable,
    snapshot,
)
from app_cart.schemas import WishlistView
from app_cart.view import wishlist_view
from shared.db import ReadPool
from shared.errors import NotFound
from shared.idempotency import Reply

MAX_WISHLIST_ITEMS = 100


async def get_wishlist(ctx: Context, user_id: str) -> WishlistView:
    """As the calling task's connection sees it (see cart.get_cart)."""
    return await _wishlist(ctx, user_id, ctx.db)


async def show_wishlist(ctx: Context, user_id: str) -> WishlistView:
    """Read on the read pool: for a request that writes nothing."""
    return await _wishlist(ctx, user_id, ctx.reads)


async def _wishlist(ctx: Context, user_id: str, source: Database | ReadPool) -> WishlistView:
    rows = await repo.wishlist_rows(source, user_id)
    return wishlist_view(rows, await current_products(ctx, (row["product_id"] for row in rows)))


async def add(ctx: Context, user_id: str, product_id: int) -> Reply:
    product = await ctx.products.get(product_id)
    if product is None:
        raise invalid("product_id", f"no product has id {product_id}")
    if not product.is_active:
        raise invalid("product_id", f"product {product_id} is not for sale", reason="inactive")
    async with ctx.db.transaction():
        wishlist_id = await repo.lock_wishlist(ctx.db, user_id)
        if await repo.wishlist_size(ctx.db, wishlist_id) >= MAX_WISHLIST_ITEMS:
            raise invalid("product_id", f"a wishlist holds at most {MAX_WISHLIST_ITEMS} products")
        added = await repo.add_wishlist_item(ctx.db, wishlist_id, snapshot(product))
    return Reply(201 if added else 200, await get_wishlist(ctx, user_id))


async def remove(ctx: Context, user_id: str, product_id: int) -> Reply:
    if not await repo.remove_wishlist_item(ctx.db, user_id, product_id):
        raise NotFound(f"Product {product_id} is not on your wishlist.")
    return Reply(200, await get_wishlist(ctx, user_id))


async def move_to_cart(ctx: Context, user_id: str, product_id: int, quantity: int) -> Reply:
    check_quantity_limit(ctx, quantity)
    product = require_buyable(await ctx.products.get(product_id), product_id, quantity)
    async with ctx.db.transaction():
        if not await repo.remove_wishlist_item(ctx.db, user_id, product_id):
            raise NotFound(f"Product {product_id} is not on your wishlist.")
        cart_id = await repo.lock_cart(ctx.db, user_id)
        await add_to_locked_cart(ctx, cart_id, product, quantity)
    return Reply(200, await get_cart(ctx, user_id))
