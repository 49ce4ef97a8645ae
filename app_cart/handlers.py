"""What the cart does with catalog events; the table from event type to handler is at the end.

A handler takes a batch: every event of its types in one `XREADGROUP` read, or a single event
when the worker applies them one by one. It runs in the transaction the worker commits before
it acknowledges the events. Handlers are idempotent and order-safe: an item's snapshot is only
replaced by a newer version of its product, so a duplicate, a replay or an event arriving after
a newer one changes nothing. Every product event also re-applies the cache invalidation (a
tombstone carrying its version): the backstop if the catalog could not reach Redis when it
committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

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

Handler = Callable[[Database, ProductInvalidator, Sequence[Event]], Awaitable[None]]


def _newest(events: Iterable[Event]) -> dict[int, Event]:
    newest: dict[int, Event] = {}
    for event in events:
        held = newest.get(event.aggregate_id)
        if held is None or event.version > held.version:
            newest[event.aggregate_id] = event
    return newest


async def product_events(db: Database, cache: ProductInvalidator, events: Sequence[Event]) -> None:
    """Created, updated and deleted products, in one statement per item table and kind.

    Only the newest state and the newest deletion of each product are applied. That is the
    same as applying every event in version order: a snapshot is only replaced by a newer
    version ("replace only if newer"), so after the newest, the older ones would change
    nothing, and before it, whatever they wrote is overwritten. States go first, as a deletion
    is always a product's last version.
    """
    changed_events = [event for event in events if event.type != PRODUCT_DELETED]
    deleted = _newest(event for event in events if event.type == PRODUCT_DELETED)
    changed = _newest(changed_events)  # with or without a state: the cache wants the newest version
    # The newest event that has a state, not the newest event: one without (data None) changes
    # no snapshot, so in version order the older state would stand; choosing it first and then
    # skipping it would drop that state.
    states = _newest(event for event in changed_events if event.data is not None)
    await repo.apply_product_states(
        db, [(event.data, event.version) for event in states.values() if event.data is not None]
    )  # (data is tested again for the type checker)
    await repo.mark_products_gone(db, [(product_id, event.version) for product_id, event in deleted.items()])
    # Also evicts a cached "no such product". One call per kind (the flag is per call).
    await cache.changed([(pid, event.version) for pid, event in changed.items() if pid not in deleted])
    # A deletion's version is the one after the last change: the tombstone wants that last one.
    await cache.changed([(pid, event.version - 1) for pid, event in deleted.items()], deleted=True)


async def nothing_to_do(db: Database, cache: ProductInvalidator, events: Sequence[Event]) -> None:
    """Cart items hold no category id: a rename reaches them as product.updated events (the
    catalog records one for each product it renamed)."""


HANDLERS: dict[str, Handler] = {
    PRODUCT_CREATED: product_events,
    PRODUCT_UPDATED: product_events,
    PRODUCT_DELETED: product_events,
    CATEGORY_CREATED: nothing_to_do,
    CATEGORY_UPDATED: nothing_to_do,
    CATEGORY_DELETED: nothing_to_do,
}
