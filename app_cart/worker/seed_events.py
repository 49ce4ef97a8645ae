"""What the cart does with the seed's events (POST /internal/events, `shared.events.seed`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from app_cart.adapters import snapshots
from app_cart.worker.deps import Deps
from app_cart.worker.refresh import refresh
from shared.events import seed
from shared.events.envelope import Event

log = logging.getLogger("app_cart.worker.handlers")


async def category_updated(deps: Deps, events: Sequence[Event]) -> None:
    """The seed's `category.updated`: the items of products in those categories are brought up
    to the catalog's current state, the version taken from the catalog as it is applied, so it
    is idempotent and order-safe although the event carries no version: a duplicate or a replay
    finds nothing behind; an older event of ours arriving after it is older than what it wrote,
    and is ignored; a newer one replaces it. The catalog is the truth about a product: if the
    seed's name is not the catalog's (the event is late, or the rename did not happen there),
    the items follow the catalog, and the log says so. The seed's `is_active` changes nothing,
    as in our catalog. Runs outside the batch's transaction (`handlers.OUTSIDE_TRANSACTION`).

    A catalog that cannot answer fails the event (CatalogUnavailable): retried with the growing
    waits, then parked for an operator to replay, as any failing event; meanwhile the
    anti-entropy sweep makes the same repair on its own schedule."""
    payloads = {payload.category_id: payload for payload in map(seed.category_updated, events)}
    held = await snapshots.held_in_categories(deps.db, list(payloads))
    refreshed = await refresh(deps.db, deps.catalog, held)
    log.info(
        "seed category.updated for categories %s: items of %d product(s) brought up to the catalog",
        sorted(payloads),
        len(refreshed.behind) + len(refreshed.gone),
    )
    for category_id, payload in payloads.items():
        names = {p.category_name for p in refreshed.current.values() if p.category_id == category_id}
        if names and payload.name not in names:
            log.warning(
                "seed category.updated named category %d %r; the catalog calls it %s: the items follow it",
                category_id,
                payload.name,
                sorted(n or "" for n in names),
            )
