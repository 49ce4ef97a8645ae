"""What the cart's event handlers work with, and their shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from databases import Database

from app_cart.worker.refresh import Catalog
from shared.events.envelope import Event
from shared.resilience.invalidation import ProductInvalidator


class Deps(NamedTuple):
    """The cart's database, the product cache's invalidator, and the catalog (for events that
    carry no state of their own)."""

    db: Database
    cache: ProductInvalidator
    catalog: Catalog


# A handler takes every event of its types in a batch (or one, when they are applied one by one).
Handler = Callable[[Deps, Sequence[Event]], Awaitable[None]]
