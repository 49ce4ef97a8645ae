"""What the cart does with catalog events; the table from event type to handler is at the end.

A handler takes a batch: every event of its types in one `XREADGROUP` read, or a single event
when the consumer applies them one by one. `apply` runs a batch's handlers in one transaction,
which commits before the consumer acknowledges the events. Handlers are idempotent and
order-safe: an item's snapshot is only replaced by a newer version of its product, so a
duplicate, a replay or an event arriving after a newer one changes nothing. Every product event
also re-applies the cache invalidation (a tombstone carrying its version): the backstop if the
catalog could not reach Redis when it committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

import msgspec

from app_cart.adapters import snapshots
from app_cart.adapters.snapshots import Snapshot
from app_cart.worker import seed_events
from app_cart.worker.deps import Deps, Handler
from app_cart.worker.refresh import snapshot_at
from shared.events import seed
from shared.events.consumer import DependencyDown
from shared.events.envelope import (
    CATEGORY_CREATED,
    CATEGORY_DELETED,
    CATEGORY_UPDATED,
    PRODUCT_CREATED,
    PRODUCT_DELETED,
    PRODUCT_UPDATED,
    Event,
)
from shared.storage.postgres import DATABASE_UNAVAILABLE


def newest(events: Iterable[Event]) -> dict[int, Event]:
    """The newest event of each aggregate (by version)."""
    found: dict[int, Event] = {}
    for event in events:
        held = found.get(event.aggregate_id)
        if held is None or event.version > held.version:
            found[event.aggregate_id] = event
    return found


class ProductState(msgspec.Struct, frozen=True):
    """What the cart reads of a product event's state (other fields are ignored)."""

    id: int
    name: str
    price: Decimal
    stock: int
    is_active: bool
    category_name: str | None
    category_id: int | None = None  # events recorded before it was read keep their meaning


def snapshot_of(event: Event) -> Snapshot:
    """What an item keeps of the product an event's state describes."""
    return snapshot_at(msgspec.convert(event.data, ProductState), event.version)


def merge(events: Sequence[Event]) -> tuple[list[Snapshot], dict[int, int], dict[int, int]]:
    """A batch of product events as what applying them in version order leaves: the snapshot
    of each product's newest state, each deleted product's deletion version, and the newest
    version of each product still there (for the cache).

    Only the newest state and the newest deletion of each product matter: a snapshot is only
    replaced by a newer version ("replace only if newer"), so after the newest, the older ones
    would change nothing, and before it, whatever they wrote is overwritten. The newest event
    that has a state, not the newest event: one without (data None) changes no snapshot, so in
    version order the older state would stand; choosing it first and then skipping it would
    drop that state. States go first, as a deletion is always a product's last version.
    """
    changed_events = [event for event in events if event.type != PRODUCT_DELETED]
    deleted = {
        pid: event.version for pid, event in newest(e for e in events if e.type == PRODUCT_DELETED).items()
    }
    states = newest(event for event in changed_events if event.data is not None)
    changed = {pid: event.version for pid, event in newest(changed_events).items() if pid not in deleted}
    return [snapshot_of(event) for event in states.values()], deleted, changed


async def product_events(deps: Deps, events: Sequence[Event]) -> None:
    """Created, updated and deleted products, in one statement per item table and kind."""
    states, deleted, changed = merge(events)
    await snapshots.apply_product_states(deps.db, states)
    await snapshots.mark_products_gone(deps.db, list(deleted.items()))
    # Also evicts a cached "no such product". One call per kind (the flag is per call).
    await deps.cache.changed(list(changed.items()))
    # A deletion's version is the one after the last change: the tombstone wants that last one.
    await deps.cache.changed([(pid, version - 1) for pid, version in deleted.items()], deleted=True)


async def nothing_to_do(deps: Deps, events: Sequence[Event]) -> None:
    """Our catalog's category events: a rename reaches the items as product.updated events
    (the catalog records one for each product it renamed), and a category's `is_active` does
    not decide whether its products can be bought (each product's own does)."""


HANDLERS: dict[str, Handler] = {
    PRODUCT_CREATED: product_events,
    PRODUCT_UPDATED: product_events,
    PRODUCT_DELETED: product_events,
    CATEGORY_CREATED: nothing_to_do,
    CATEGORY_UPDATED: nothing_to_do,
    CATEGORY_DELETED: nothing_to_do,
    seed.SEED_CATEGORY_UPDATED: seed_events.category_updated,
}
# Handlers that read the catalog run before the batch's transaction, writing in transactions of
# their own: an HTTP call must not keep the row locks the batch takes (shoppers' writes would
# wait on it). Their writes are version-guarded, so they need no atomicity with the rest of the
# batch: if the batch then fails, its retry runs them again, which changes nothing.
OUTSIDE_TRANSACTION: frozenset[Handler] = frozenset({seed_events.category_updated})


async def apply(deps: Deps, events: Sequence[Event]) -> None:
    """Events in one transaction (but those of OUTSIDE_TRANSACTION), each handler given all of
    its events at once. A database that
    cannot be reached raises DependencyDown: the consumer backs off, the events left pending."""
    by_handler: dict[Handler, list[Event]] = {}
    for event in events:
        by_handler.setdefault(HANDLERS[event.type], []).append(event)
    try:
        for handler in OUTSIDE_TRANSACTION & by_handler.keys():
            await handler(deps, by_handler.pop(handler))
        async with deps.db.transaction():
            for handler, its_events in by_handler.items():
                await handler(deps, its_events)
    except DATABASE_UNAVAILABLE as exc:
        raise DependencyDown(f"{type(exc).__name__}: {exc}") from exc
