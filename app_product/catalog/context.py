"""What catalog writes need, wired once by the app (or a tool): the database and the cache
invalidator, told about changed products after each commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from databases import Database

from shared.resilience.invalidation import ProductInvalidator


@dataclass(frozen=True)
class Catalog:
    db: Database
    invalidator: ProductInvalidator

    async def products_changed(self, versions: Sequence[tuple[int, int]], *, deleted: bool = False) -> None:
        """After the commit, before the answer: so no cart is served the old product from cache
        once the writer has been told the change is done."""
        await self.invalidator.changed(versions, deleted=deleted)
