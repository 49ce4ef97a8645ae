"""The cart's Starlette application: the shared skeleton, the catalog client (with its breaker
and cache counters in /metrics), key pruning."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.types import Scope

from app_cart.adapters.catalog_client import catalog_client
from app_cart.api import contract
from app_cart.api.internal import routes as internal_routes
from app_cart.api.problems import PROBLEMS
from app_cart.api.promo_routes import routes as promo_routes
from app_cart.api.routes import routes
from app_cart.services.context import Context
from app_cart.settings import CartSettings
from shared.events.metrics import expose_stream
from shared.events.status import stream_statuses
from shared.http.app import build_app, worker_app
from shared.http.idempotency import prune
from shared.keys import CART_GROUP, keys_for
from shared.ratelimit.groups import default_groups
from shared.resilience.metrics import expose_breaker, expose_cache
from shared.storage.postgres import create_read_pool

SERVICE = "cart"
PRUNE_EVERY_SECONDS = 600
log = logging.getLogger(__name__)


async def _prune_keys_forever(app: Starlette, ttl_seconds: int) -> None:
    """Delete expired idempotency keys now and then. Every instance does it; that is harmless."""
    while True:
        try:
            while await prune(app.state.db, ttl_seconds) > 0:
                pass
        except Exception:  # a failed round is retried at the next one; the loop must not die
            log.exception("pruning idempotency keys failed")
        await asyncio.sleep(PRUNE_EVERY_SECONDS)


def rate_limit_groups(scope: Scope) -> str | None:
    """Promo code management is for admins: it counts against the admin limits."""
    if scope["path"].startswith("/api/promo-codes"):
        return "admin"
    return default_groups(scope)


def create_app(
    settings: CartSettings, catalog_transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """`catalog_transport` lets tests serve the catalog in-process instead of over the network."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await reads.connect()
        try:
            pruner = asyncio.create_task(_prune_keys_forever(app, settings.idempotency_ttl_seconds))
            try:
                yield
            finally:
                pruner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pruner
                await app.state.cart.products.aclose()
        finally:
            await reads.disconnect()

    reads = create_read_pool(settings)
    app = build_app(
        SERVICE,
        settings,
        [*routes, *promo_routes, *internal_routes],
        lifespan,
        rate_limit_groups=rate_limit_groups,
        ready_checks={"postgres_reads": reads.ping},
        problems=PROBLEMS,
        read_pools=[reads],
        # Every answer of the cart is personal: carts, wishlists, promo codes, internal.
        private_paths=("/api/", "/internal/", "/metrics"),
        openapi=contract.openapi,
    )
    products = catalog_client(settings, app.state.redis, catalog_transport)
    expose_breaker(app.state.metrics, products.breaker, app.state.redis, keys_for(settings))
    expose_cache(app.state.metrics, products.cache)
    # The event pipeline as Redis has it, from the cart too: it stays visible with no worker up.
    expose_stream(app.state.metrics, *stream_statuses(app.state.redis, keys_for(settings), CART_GROUP))
    app.state.cart = Context(
        db=app.state.db,
        reads=reads,
        products=products,
        max_item_quantity=settings.max_item_quantity,
        max_cart_items=settings.max_cart_items,
    )
    return app


def from_environment() -> Starlette:
    """The app of one worker process when WEB_CONCURRENCY > 1 (uvicorn imports it by this name)."""
    return worker_app(SERVICE, CartSettings, create_app)
