"""A cart's promo code: applying one (replacing any other) and removing it.

The code's terms are judged twice, by the same rule (`domain.promo.refusal`): first against the
current subtotal, before any lock, so a refused code costs no transaction; then, inside the
cart's transaction, against the code's row as `promo_codes.take_use` locked it, so a code
deactivated or expired meanwhile is refused and its use given back by the rollback. Whether a
use is left is decided by that UPDATE alone (see its docstring for the race).
"""

from __future__ import annotations

import re

from app_cart.adapters import carts, promo_codes
from app_cart.adapters.carts import Row
from app_cart.domain.promo import CODE_PATTERN, PromoRefused, Refusal, refusal
from app_cart.services.cart import get_cart
from app_cart.services.context import Context
from app_cart.services.models import CartView
from app_cart.services.views import cart_view, promo_terms
from shared.errors import NotFound
from shared.resilience.cache_entries import Lookup


async def apply_promo(ctx: Context, user_id: str, raw_code: str) -> CartView:
    code = raw_code.upper()
    promo = await promo_codes.promo_by_code(ctx.db, code) if re.match(CODE_PATTERN, code) else None
    if promo is None:
        raise PromoRefused(Refusal.UNKNOWN, code)
    rows = await carts.cart_rows(ctx.db, user_id)
    ids = [row["product_id"] for row in rows if row["product_id"] is not None]
    # The minimum is judged on current prices, from the catalog itself.
    subtotal = cart_view(rows, Lookup(found=await ctx.products.get_many(ids))).subtotal
    terms = promo_terms(promo, is_active=promo["is_active"])
    reason = refusal(terms, promo["now"], subtotal)
    if reason is not None:
        raise PromoRefused(reason, code)
    async with ctx.db.transaction():
        cart_id = await carts.lock_cart(ctx.db, user_id)
        previous = await promo_codes.applied_promo_id(ctx.db, cart_id)
        if previous != promo["id"]:
            await _take(ctx, promo, user_id, code)
            if previous is not None:
                await promo_codes.release_use(ctx.db, previous)
            await promo_codes.set_cart_promo(ctx.db, cart_id, promo["id"])
    return await get_cart(ctx, user_id)


async def _take(ctx: Context, promo: Row, user_id: str, code: str) -> None:
    first_time = await promo_codes.redeem(ctx.db, promo["id"], user_id)
    if promo["once_per_user"] and not first_time:
        raise PromoRefused(Refusal.ALREADY_USED, code)
    now = await promo_codes.take_use(ctx.db, promo["id"])
    if now is None:  # the last use went to someone else
        raise PromoRefused(Refusal.USED_UP, code)
    # The code may have changed since it was read: judged again as it is now, at its own
    # minimum (the subtotal was already found sufficient for the terms read before).
    current = promo_terms(now, is_active=now["is_active"])
    reason = refusal(current, now["now"], current.min_subtotal)
    if reason is not None:
        raise PromoRefused(reason, code)  # rolls back the use just taken


async def remove_promo(ctx: Context, user_id: str) -> CartView:
    async with ctx.db.transaction():
        cart_id = await carts.lock_cart(ctx.db, user_id)
        released = await promo_codes.clear_cart_promo(ctx.db, cart_id)
        if released is None:
            raise NotFound("No promo code is applied to your cart.")
        await promo_codes.release_use(ctx.db, released)
    return await get_cart(ctx, user_id)
