"""The anti-entropy sweep: a backstop for any loss of events we did not foresee.

Events keep the cart's product snapshots in step with the catalog; if some were lost anyway (a
Redis loss older than the outbox's retention, an operator's mistake, a bug), nothing else would
ever repair what they should have changed. Every SWEEP_INTERVAL_SECONDS one worker (a
PostgreSQL advisory lock elects it) walks the distinct products held in carts and wishlists, a
page of SWEEP_PAGE_SIZE at a time, asks the catalog's batch endpoint for them (one request per
page: a sweep of N distinct products costs ceil(N / page size) catalog requests, through the
circuit breaker, refreshing the product cache on the way), and repairs what is behind
(`app_cart.worker.refresh`):
- a product newer in the catalog than the oldest item holding it gets that newer snapshot,
  written by the worker's own version-guarded statement (`snapshots.apply_product_states`), so
  an item that is already as new, or newer, is left alone;
- a product the catalog no longer has, still held as buyable by some item, is marked gone at a
  version no event can reach (ids are never reused, so a deletion is final).
Each repair is counted and logged at warning level: in a healthy system a sweep repairs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging

import asyncpg
from databases import Database

from app_cart.adapters import snapshots
from app_cart.adapters.catalog_client import CatalogUnavailable
from app_cart.worker.refresh import Catalog, refresh
from shared.signals import sleep_unless_stopped
from shared.storage.postgres import DATABASE_UNAVAILABLE, connect_arguments

log = logging.getLogger("app_cart.worker.sweep")

_LOCK_KEY = int.from_bytes(hashlib.sha256(b"storefront.cart-sweep").digest()[:8], "big", signed=True)


class Sweep:
    def __init__(self, db: Database, database_url: str, catalog: Catalog, page_size: int) -> None:
        self._db = db
        self._database_url = database_url
        self._catalog = catalog
        self._page_size = page_size
        self.sweeps = 0  # completed by this process
        self.repaired = 0  # products whose items this process repaired

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Sweep every `interval` seconds until `stop`; a failed sweep waits for the next."""
        while not stop.is_set():
            try:
                await self.sweep_once()
            except (CatalogUnavailable, *DATABASE_UNAVAILABLE) as exc:  # type: ignore[misc]
                log.info("sweep skipped: %s: %s", type(exc).__name__, exc)
            except Exception:  # a bug must not stop the worker's sweeps for good
                log.exception("sweep failed")
            await sleep_unless_stopped(stop, interval)

    async def sweep_once(self) -> int | None:
        """One sweep, if no other worker is sweeping: the products repaired (None if skipped)."""
        lock = await asyncpg.connect(**connect_arguments(self._database_url))
        try:
            if not await lock.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
                return None
            repaired, after = 0, 0
            while page := await snapshots.held_products(self._db, after, self._page_size):
                repaired += await self._repair(page)
                after = page[-1].product_id
            self.sweeps += 1
            return repaired
        finally:
            with contextlib.suppress(*DATABASE_UNAVAILABLE):
                await lock.close()  # releases the lock

    async def _repair(self, page: list[snapshots.Held]) -> int:
        behind, gone, _ = await refresh(self._db, self._catalog, page)
        if not behind and not gone:
            return 0
        self.repaired += len(behind) + len(gone)
        log.warning(
            "anti-entropy sweep repaired items of %d product(s) behind the catalog %s and %d gone from it %s",
            len(behind),
            behind,
            len(gone),
            gone,
        )
        return len(behind) + len(gone)
