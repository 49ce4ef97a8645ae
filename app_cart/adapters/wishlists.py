"""Every SQL statement on wishlists and their items."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from databases import Database

from app_cart.adapters.carts import Row
from shared.storage.postgres import ReadPool, fetch_fast


async def wishlist_rows(db: Database | ReadPool, user_id: str) -> list[Row]:
    return await fetch_fast(
        db,
        "SELECT i.product_id, i.product_name, i.category_name, i.price_when_added, i.current_price,"
        " i.is_available, i.added_at"
        " FROM wishlists w JOIN wishlist_items i ON i.wishlist_id = w.id"
        " WHERE w.user_id = $1 ORDER BY i.added_at, i.product_id",
        user_id,
    )


async def lock_wishlist(db: Database, user_id: str) -> int:
    """As `lock_cart`, for the wishlist."""
    wishlist_id = await db.fetch_val(
        "INSERT INTO wishlists (user_id) VALUES (:user_id)"
        " ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id RETURNING id",
        {"user_id": user_id},
    )
    return int(wishlist_id)


async def wishlist_size(db: Database, wishlist_id: int) -> int:
    return int(
        await db.fetch_val("SELECT count(*) FROM wishlist_items WHERE wishlist_id = :id", {"id": wishlist_id})
    )


async def add_wishlist_item(db: Database, wishlist_id: int, snapshot: Mapping[str, Any]) -> bool:
    """True if added, False if it was already there (adding twice is not an error)."""
    row = await db.fetch_one(
        "INSERT INTO wishlist_items (wishlist_id, product_id, product_name, category_name, category_id,"
        " price_when_added, current_price, is_available, product_version)"
        " VALUES (:wishlist_id, :product_id, :name, :category_name, :category_id, :price, :price,"
        " :is_available, :version)"
        " ON CONFLICT (wishlist_id, product_id) DO NOTHING RETURNING 1",
        {"wishlist_id": wishlist_id, **snapshot},
    )
    return row is not None


async def remove_wishlist_item(db: Database, user_id: str, product_id: int) -> bool:
    row = await db.fetch_one(
        "DELETE FROM wishlist_items i USING wishlists w"
        " WHERE i.wishlist_id = w.id AND w.user_id = :user_id AND i.product_id = :product_id RETURNING 1",
        {"user_id": user_id, "product_id": product_id},
    )
    return row is not None
