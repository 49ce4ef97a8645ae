"""What the cart does with each catalog event; the table from event type to handler is at the end.

Handlers are idempotent and order-safe: an item's snapshot is only replaced by a newer version
of its product, so a duplicate, a replay or an event arriving after a newer one changes nothing.
Each runs in the transaction the worker commits before it acknowledges the event. Every product
event also re-applies the cache invalidation (a tombstone carrying its version): the backstop if
the catalog could not reach Redis when it committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from databases import Database

from app_cart import repo
from shared.events import (
    CATEGORY_CREATED,
    CATEGORY_DELETED,
    CATEGORY_UPDATED,
    PRODUCT_CREATED,
    PRODUCT_DELETED,
    PRODUCT_UPDATED,
    Event,
)
from shared.product_cache import ProductInvalidator

Handler = Callable[[Database, ProductInvalidator, Event], Awaitable[None]]


async def product_changed(db: Database, cache: ProductInvalidator, event: Event) -> None:
    if event.data is not None:
        await repo.apply_product_state(db, event.data, event.version)
    await cache.changed([(event.aggregate_id, event.version)])


async def product_deleted(db: Database, cache: ProductInvalidator, event: Event) -> None:
    await repo.mark_product_gone(db, event.aggregate_id, event.version)
    # The event's version is the one after the last change: the tombstone wants that last one.
    await cache.changed([(event.aggregate_id, event.version - 1)], deleted=True)


async def nothing_to_do(db: Database, cache: ProductInvalidator, event: Event) -> None:
    """Cart items hold no category id: a rename reaches them as product.updated events (the
    catalog records one for each product it renamed)."""


HANDLERS: dict[str, Handler] = {
    PRODUCT_CREATED: product_changed,  # also evicts a cached "no such product"
    PRODUCT_UPDATED: product_changed,
    PRODUCT_DELETED: product_deleted,
    CATEGORY_CREATED: nothing_to_do,
    CATEGORY_UPDATED: nothing_to_do,
    CATEGORY_DELETED: nothing_to_do,
}
