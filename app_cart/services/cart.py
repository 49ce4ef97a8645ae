"""The cart: reading it and changing its items.

Every write to a cart runs in one transaction that first locks the cart's row
(`carts.lock_cart`, which also creates the cart on first use). Writes to one cart therefore
happen one at a time, so a check (is there room, is this within the limit) and the change it
guards cannot be split by a second tab; the item upsert is also a single `INSERT ... ON
CONFLICT` that adds to what is there, so two concurrent adds of one product sum, and refuses a
sum over the quantity limit by itself. Catalog reads happen before the transaction, so no
transaction waits on the network (except the rare re-check in `set_quantity`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from databases import Database

from app_cart.adapters import carts, promo_codes
from app_cart.adapters.catalog_client import CatalogProduct
from app_cart.domain.availability import DELETED, INACTIVE, is_available, unavailable_reason
from app_cart.services.context import Context
from app_cart.services.models import CartView
from app_cart.services.views import cart_view
from shared.errors import NotFound, ValidationFailed, invalid
from shared.resilience.cache_entries import Lookup
from shared.storage.postgres import ReadPool


def snapshot(product: CatalogProduct) -> dict[str, Any]:
    """The product data an item keeps, as repo binds."""
    return {
        "product_id": product.id,
        "name": product.name,
        "category_name": product.category_name,
        "category_id": product.category_id,
        "price": product.price,
        "is_available": is_available(product),
        "version": product.version,
    }


def require_buyable(product: CatalogProduct | None, product_id: int, quantity: int) -> CatalogProduct:
    """`product` if `quantity` of it can be bought now; else a 422 that says why."""
    reason = unavailable_reason(product, quantity)
    if product is None or reason == DELETED:
        raise invalid("product_id", f"no product has id {product_id}")
    if reason == INACTIVE:
        raise invalid("product_id", f"product {product_id} is not for sale", reason=reason)
    if reason is not None:
        raise invalid("quantity", f"only {product.stock} in stock", reason=reason, in_stock=product.stock)
    return product


def check_quantity_limit(ctx: Context, quantity: int) -> None:
    if quantity > ctx.max_item_quantity:
        raise _over_limit(ctx)


def _over_limit(ctx: Context) -> ValidationFailed:
    return invalid("quantity", f"at most {ctx.max_item_quantity} of one product", limit=ctx.max_item_quantity)


async def current_products(ctx: Context, ids: Iterable[int]) -> Lookup:
    """What is known of `ids` for showing them: current, or last known and marked stale."""
    return await ctx.products.lookup(ids)


async def get_cart(ctx: Context, user_id: str) -> CartView:
    """The cart as the calling task's connection sees it: inside a write's transaction (an
    idempotent one answers from within it), with the write's own changes."""
    return await _cart(ctx, user_id, ctx.db)


async def show_cart(ctx: Context, user_id: str) -> CartView:
    """The cart, read on the read pool: for a request that writes nothing."""
    return await _cart(ctx, user_id, ctx.reads)


async def _cart(ctx: Context, user_id: str, source: Database | ReadPool) -> CartView:
    rows = await carts.cart_rows(source, user_id)
    products = await current_products(
        ctx, (row["product_id"] for row in rows if row["product_id"] is not None)
    )
    return cart_view(rows, products)


async def add_item(ctx: Context, user_id: str, product_id: int, quantity: int) -> CartView:
    check_quantity_limit(ctx, quantity)
    product = require_buyable(await ctx.products.get(product_id), product_id, quantity)
    async with ctx.db.transaction():
        cart_id = await carts.lock_cart(ctx.db, user_id)
        await add_to_locked_cart(ctx, cart_id, product, quantity)
    return await get_cart(ctx, user_id)


async def add_to_locked_cart(ctx: Context, cart_id: int, product: CatalogProduct, quantity: int) -> None:
    """Add to a cart whose row this transaction holds locked (so these checks stay true)."""
    existing = await carts.item_quantity(ctx.db, cart_id, product.id)
    if existing is None and await carts.item_count(ctx.db, cart_id) >= ctx.max_cart_items:
        raise invalid("product_id", f"a cart holds at most {ctx.max_cart_items} different products")
    total = (existing or 0) + quantity
    check_quantity_limit(ctx, total)
    require_buyable(product, product.id, total)
    if await carts.add_item(ctx.db, cart_id, snapshot(product), quantity, ctx.max_item_quantity) is None:
        # The upsert's own guard: unreachable while the cart row lock keeps the read above
        # exact, and still a refusal, never an item over the limit, if it did not.
        raise _over_limit(ctx)


async def set_quantity(ctx: Context, user_id: str, product_id: int, quantity: int) -> CartView:
    check_quantity_limit(ctx, quantity)
    cart_id = await carts.find_cart_id(ctx.db, user_id)
    before = None if cart_id is None else await carts.item_quantity(ctx.db, cart_id, product_id)
    if before is None:
        raise NotFound(f"Product {product_id} is not in your cart.")
    # Taking less never needs the catalog; taking more needs the product to be buyable.
    product = None
    if quantity > before:
        product = require_buyable(await ctx.products.get(product_id), product_id, quantity)
    async with ctx.db.transaction():
        cart_id = await carts.lock_cart(ctx.db, user_id)
        now = await carts.item_quantity(ctx.db, cart_id, product_id)
        if now is None:
            raise NotFound(f"Product {product_id} is not in your cart.")
        if product is None and quantity > now:  # another tab lowered it meanwhile
            product = require_buyable(await ctx.products.get(product_id), product_id, quantity)
        if product is not None:
            await carts.set_quantity(ctx.db, cart_id, product_id, quantity, snapshot(product))
        else:
            await carts.reduce_quantity(ctx.db, cart_id, product_id, quantity)
    return await get_cart(ctx, user_id)


async def remove_item(ctx: Context, user_id: str, product_id: int) -> CartView:
    async with ctx.db.transaction():
        cart_id = await carts.lock_cart(ctx.db, user_id)
        if not await carts.remove_item(ctx.db, cart_id, product_id):
            raise NotFound(f"Product {product_id} is not in your cart.")
    return await get_cart(ctx, user_id)


async def delete_cart(ctx: Context, user_id: str) -> None:
    """Empty the cart (items and code; the code's use is given back). Deleting twice is fine."""
    async with ctx.db.transaction():
        cart_id = await carts.find_cart_id(ctx.db, user_id)
        if cart_id is not None:
            cart_id = await carts.lock_cart(ctx.db, user_id)
            released = await promo_codes.clear_cart_promo(ctx.db, cart_id)
            if released is not None:
                await promo_codes.release_use(ctx.db, released)
            await carts.delete_cart(ctx.db, cart_id)
