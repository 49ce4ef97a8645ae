"""What the cart's services need, wired once by the app: the database (and its read pool), the
catalog client, and the configured limits."""

from __future__ import annotations

from dataclasses import dataclass

from databases import Database

from app_cart.adapters.catalog_client import ProductClient
from shared.storage.postgres import ReadPool


@dataclass(frozen=True)
class Context:
    db: Database
    reads: ReadPool
    products: ProductClient
    max_item_quantity: int
    max_cart_items: int
