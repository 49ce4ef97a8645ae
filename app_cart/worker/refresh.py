"""Items brought up to the catalog's current state: what the anti-entropy sweep does for every
held product, and what a seed `category.updated` (which carries no version) does for the
products of its category.

The catalog's batch endpoint answers with each product's current state and version; the items
are written by the worker's own version-guarded statements (`snapshots`), so an item that is
already as new, or newer (an event applied meanwhile), is left alone, and a refresh can never
roll an item back, however late it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple, Protocol

from databases import Database

from app_cart.adapters import snapshots
from app_cart.adapters.catalog_client import CatalogProduct
from app_cart.adapters.snapshots import Held, Snapshot
from app_cart.domain.availability import is_available
from shared.types import MAX_INT

GONE_VERSION = MAX_INT  # a deleted product's items: no event's version reaches it


class Catalog(Protocol):
    async def get_many(self, ids: list[int]) -> dict[int, CatalogProduct]: ...


class Refreshed(NamedTuple):
    behind: list[int]  # products whose items got the catalog's newer state
    gone: list[int]  # products the catalog no longer has, marked not buyable
    current: dict[int, CatalogProduct]  # what the catalog answered


class Described(Protocol):
    """A product as an event's state or the catalog's answer describes it."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def category_name(self) -> str | None: ...
    @property
    def category_id(self) -> int | None: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def stock(self) -> int: ...


def snapshot_at(product: Described, version: int) -> Snapshot:
    """What an item keeps of `product`, as it was at `version`: the one place it is built."""
    return Snapshot(
        product.id,
        version,
        product.name,
        product.category_name,
        product.price,
        is_available(product),
        product.category_id,
    )


def behind_catalog(
    held: Sequence[Held], current: dict[int, CatalogProduct]
) -> tuple[list[Snapshot], list[tuple[int, int]]]:
    """What to write for `held` products, given the catalog's answer: the newer states, and the
    deletions (ids are never reused, so a product the catalog no longer has is gone for good)."""
    behind: list[Snapshot] = []
    gone: list[tuple[int, int]] = []
    for product in held:
        now = current.get(product.product_id)
        if now is None:
            if product.any_available:
                gone.append((product.product_id, GONE_VERSION))
        elif now.version > product.oldest_version:
            behind.append(snapshot_at(now, now.version))
    return behind, gone


async def refresh(db: Database, catalog: Catalog, held: Sequence[Held]) -> Refreshed:
    """Read `held` products from the catalog (one request per 100), then write what is behind
    in one transaction of its own, opened only if there is something to write: no connection
    waits in a transaction, and no row stays locked, while the catalog answers. Raises
    CatalogUnavailable if the catalog cannot answer (nothing written)."""
    current = await catalog.get_many([product.product_id for product in held])
    behind, gone = behind_catalog(held, current)
    if behind or gone:
        async with db.transaction():
            await snapshots.apply_product_states(db, behind)
            await snapshots.mark_products_gone(db, gone)
    return Refreshed([s.product_id for s in behind], [pid for pid, _ in gone], current)
