"""The cart: reading it, changing its items, applying and removing a promo code.

Every write to a cart runs in one transaction that first locks the cart's row (`repo.lock_cart`,
which also creates the cart on first use). Writes to one cart therefore happen one at a time,
so a check (is there room, is this within the limit) and the change it guards cannot be split
by a second tab; the item upsert is also a single `INSERT ... ON CONFLICT` that adds to what is
there, so two concurrent adds of one product sum. Catalog reads happen before the transaction,
so no transaction waits on the network (except the rare re-check in `set_quantity`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from databases import Database

from app_cart import pricing, repo
from app_cart.pricing import Refusal
from app_cart.products import CatalogProduct, ProductClient
from app_cart.schemas import CODE_PATTERN, AddItem, CartView
from app_cart.view import cart_view, promo_terms, unavailable_reason
from shared.db import ReadPool
from shared.errors import FieldError, NotFound, Problem, ValidationFailed
from shared.idempotency import Reply
from shared.product_cache import Lookup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What cart operations need: the database (and its read pool), the catalog, and the
    configured limits."""

    db: Database
    reads: ReadPool
    products: ProductClient
    max_item_quantity: int
    max_cart_items: int


class PromoRefused(Problem):
    status, slug, title = 422, "promo-code-refused", "The promo code cannot be applied"


def invalid(field: str, message: str, **extensions: Any) -> ValidationFailed:
    return ValidationFailed(
        f"{field}: {message}", errors=[FieldError(field=field, message=message)], **extensions
    )


def snapshot(product: CatalogProduct) -> dict[str, Any]:
    """The product data an item keeps, as repo binds."""
    return {
        "product_id": product.id,
        "name": product.name,
        "category_name": product.category_name,
        "price": product.price,
        "version": product.version,
    }


def require_buyable(product: CatalogProduct | None, product_id: int, quantity: int) -> CatalogProduct:
    """`product` if `quantity` of it can be bought now; else a 422 that says why."""
    reason = unavailable_reason(product, quantity)
    if product is None or reason == "deleted":
        raise invalid("product_id", f"no product has id {product_id}")
    if reason == "inactive":
        raise invalid("product_id", f"product {product_id} is not for sale", reason=reason)
    if reason is not None:
        raise invalid("quantity", f"only {product.stock} in stock", reason=reason, in_stock=product.stock)
    return product


def check_quantity_limit(ctx: Context, quantity: int) -> None:
    if quantity > ctx.max_item_quantity:
        raise invalid(
            "quantity", f"at most {ctx.max_item_quantity} of one product", limit=ctx.max_item_quantity
        )


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
    rows = await repo.cart_rows(source, user_id)
    products = await current_products(
        ctx, (row["product_id"] for row in rows if row["product_id"] is not None)
    )
    return cart_view(rows, products)


async def add_item(ctx: Context, user_id: str, body: AddItem) -> Reply:
    check_quantity_limit(ctx, body.quantity)
    product = require_buyable(await ctx.products.get(body.product_id), body.product_id, body.quantity)
    async with ctx.db.transaction():
        cart_id = await repo.lock_cart(ctx.db, user_id)
        await add_to_locked_cart(ctx, cart_id, product, body.quantity)
    return Reply(200, await get_cart(ctx, user_id))


async def add_to_locked_cart(ctx: Context, cart_id: int, product: CatalogProduct, quantity: int) -> None:
    """Add to a cart whose row this transaction holds locked (so these checks stay true)."""
    existing = await repo.item_quantity(ctx.db, cart_id, product.id)
    if existing is None and await repo.item_count(ctx.db, cart_id) >= ctx.max_cart_items:
        raise invalid("product_id", f"a cart holds at most {ctx.max_cart_items} different products")
    total = (existing or 0) + quantity
    check_quantity_limit(ctx, total)
    require_buyable(product, product.id, total)
    added = await repo.add_item(ctx.db, cart_id, snapshot(product), quantity, ctx.max_item_quantity)
    assert added == total  # the row lock makes the read above exact


async def set_quantity(ctx: Context, user_id: str, product_id: int, quantity: int) -> Reply:
    check_quantity_limit(ctx, quantity)
    cart_id = await repo.find_cart_id(ctx.db, user_id)
    before = None if cart_id is None else await repo.item_quantity(ctx.db, cart_id, product_id)
    if before is None:
        raise NotFound(f"Product {product_id} is not in your cart.")
    # Taking less never needs the catalog; taking more needs the product to be buyable.
    product = None
    if quantity > before:
        product = require_buyable(await ctx.products.get(product_id), product_id, quantity)
    async with ctx.db.transaction():
        cart_id = await repo.lock_cart(ctx.db, user_id)
        now = await repo.item_quantity(ctx.db, cart_id, product_id)
        if now is None:
            raise NotFound(f"Product {product_id} is not in your cart.")
        if product is None and quantity > now:  # another tab lowered it meanwhile
            product = require_buyable(await ctx.products.get(product_id), product_id, quantity)
        if product is not None:
            await repo.set_quantity(ctx.db, cart_id, product_id, quantity, snapshot(product))
        else:
            await repo.reduce_quantity(ctx.db, cart_id, product_id, quantity)
    return Reply(200, await get_cart(ctx, user_id))


async def remove_item(ctx: Context, user_id: str, product_id: int) -> Reply:
    async with ctx.db.transaction():
        cart_id = await repo.lock_cart(ctx.db, user_id)
        if not await repo.remove_item(ctx.db, cart_id, product_id):
            raise NotFound(f"Product {product_id} is not in your cart.")
    return Reply(200, await get_cart(ctx, user_id))


async def delete_cart(ctx: Context, user_id: str) -> Reply:
    """Empty the cart (items and code; the code's use is given back). Deleting twice is fine."""
    async with ctx.db.transaction():
        cart_id = await repo.find_cart_id(ctx.db, user_id)
        if cart_id is not None:
            cart_id = await repo.lock_cart(ctx.db, user_id)
            released = await repo.clear_cart_promo(ctx.db, cart_id)
            if released is not None:
                await repo.release_use(ctx.db, released)
            await repo.delete_cart(ctx.db, cart_id)
    return Reply(204, None)


# Promo codes ----------------------------------------------------------------------------------


def refused(reason: Refusal, code: str) -> PromoRefused:
    messages = {
        Refusal.UNKNOWN: "There is no such code.",
        Refusal.INACTIVE: "This code is no longer active.",
        Refusal.NOT_YET_VALID: "This code is not valid yet.",
        Refusal.EXPIRED: "This code has expired.",
        Refusal.BELOW_MINIMUM: "The cart is below this code's minimum subtotal.",
        Refusal.USED_UP: "This code has been used as many times as it may be.",
        Refusal.ALREADY_USED: "You have already used this code.",
    }
    return PromoRefused(messages[reason], reason=reason.value, code=code)


async def apply_promo(ctx: Context, user_id: str, raw_code: str) -> Reply:
    code = raw_code.upper()
    promo = await repo.promo_by_code(ctx.db, code) if re.match(CODE_PATTERN, code) else None
    if promo is None:
        raise refused(Refusal.UNKNOWN, code)
    rows = await repo.cart_rows(ctx.db, user_id)
    ids = [row["product_id"] for row in rows if row["product_id"] is not None]
    # The minimum is judged on current prices, from the catalog itself.
    subtotal = cart_view(rows, Lookup(found=await ctx.products.get_many(ids))).subtotal
    reason = pricing.refusal(promo_terms(promo, is_active=promo["is_active"]), promo["now"], subtotal)
    if reason is not None:
        raise refused(reason, code)
    async with ctx.db.transaction():
        cart_id = await repo.lock_cart(ctx.db, user_id)
        previous = await repo.applied_promo_id(ctx.db, cart_id)
        if previous != promo["id"]:
            await _take(ctx, promo, user_id, code)
            if previous is not None:
                await repo.release_use(ctx.db, previous)
            await repo.set_cart_promo(ctx.db, cart_id, promo["id"])
    return Reply(200, await get_cart(ctx, user_id))


async def _take(ctx: Context, promo: repo.Row, user_id: str, code: str) -> None:
    first_time = await repo.redeem(ctx.db, promo["id"], user_id)
    if promo["once_per_user"] and not first_time:
        raise refused(Refusal.ALREADY_USED, code)
    if not await repo.take_use(ctx.db, promo["id"]):
        # No use taken: the last one went to someone else, or the code changed meanwhile
        # (judged at its own minimum, as the subtotal was already found sufficient).
        now = await repo.promo_by_code(ctx.db, code)
        reason = None
        if now is not None:
            terms = promo_terms(now, is_active=now["is_active"])
            reason = pricing.refusal(terms, now["now"], terms.min_subtotal)
        raise refused(reason or Refusal.USED_UP, code)


async def remove_promo(ctx: Context, user_id: str) -> Reply:
    async with ctx.db.transaction():
        cart_id = await repo.lock_cart(ctx.db, user_id)
        released = await repo.clear_cart_promo(ctx.db, cart_id)
        if released is None:
            raise NotFound("No promo code is applied to your cart.")
        await repo.release_use(ctx.db, released)
    return Reply(200, await get_cart(ctx, user_id))
