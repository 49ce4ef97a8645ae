"""The catalog's Starlette application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.types import Scope

from app_product.api import contract
from app_product.api.routes import routes
from app_product.catalog.context import Catalog
from app_product.settings import CatalogSettings
from shared.http.app import build_app, worker_app
from shared.keys import keys_for
from shared.ratelimit.groups import default_groups
from shared.resilience.invalidation import ProductInvalidator
from shared.storage.postgres import create_database, create_read_pool
from shared.storage.redis_conn import create_redis

SERVICE = "catalog"


def rate_limit_groups(scope: Scope) -> str | None:
    """Every catalog write needs the admin role, so it counts against the admin limits."""
    group = default_groups(scope)
    return "admin" if group == "writes" else group


def create_app(settings: CatalogSettings) -> Starlette:
    reads = create_read_pool(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await reads.connect()
        try:
            yield
        finally:
            await reads.disconnect()

    app = build_app(
        SERVICE,
        settings,
        routes,
        lifespan,
        rate_limit_groups=rate_limit_groups,
        ready_checks={"postgres_reads": reads.ping},
        read_pools=[reads],
        openapi=contract.openapi,
    )
    app.state.catalog = Catalog(app.state.db, invalidator(app.state.redis, settings))
    # Public reads (products, listings, search, categories) go through their own pool.
    app.state.reads = reads
    app.state.http_cache_max_age = settings.http_cache_max_age
    return app


def invalidator(redis: Redis, settings: CatalogSettings) -> ProductInvalidator:
    return ProductInvalidator(redis, keys_for(settings), settings.cache_tombstone_seconds)


@contextlib.asynccontextmanager
async def open_catalog(settings: CatalogSettings) -> AsyncIterator[Catalog]:
    """The catalog's pools outside the web app (scripts: demo data, reconcile)."""
    db, redis = create_database(settings), create_redis(settings)
    await db.connect()
    try:
        yield Catalog(db, invalidator(redis, settings))
    finally:
        await db.disconnect()
        await redis.aclose()


def from_environment() -> Starlette:
    """The app of one worker process when WEB_CONCURRENCY > 1 (uvicorn imports it by this name)."""
    return worker_app(SERVICE, CatalogSettings, create_app)
