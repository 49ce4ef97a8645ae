"""Fixtures: real PostgreSQL and Redis servers started by this test session, and clients.

Servers run on free loopback ports in temporary directories and are removed afterwards; tests
never touch a server or data they did not create. Tests share one migrated catalog database
and keep apart by unique names (`unique`), not by truncating tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette

from app_cart.app import create_app as create_cart_app
from app_cart.settings import CartSettings
from app_product.app import create_app as create_catalog_app
from app_product.settings import CatalogSettings
from devtools.redis_cluster import RedisCluster, throwaway_redis_cluster
from devtools.servers import PostgresServer, RedisServer, throwaway_postgres, throwaway_redis
from shared.config import load_settings
from shared.events import tracing as event_tracing
from shared.storage.migrations import SQL_ROOT, migrate
from shared.telemetry import tracing
from tests.support.env import as_user, make_token, service_env
from tests.support.redis_mode import CLUSTER


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Every coroutine test runs on asyncio through anyio's plugin (it ships with Starlette).
    # The mark must be on the function before anyio's own hook sees it, hence tryfirst.
    if inspect.iscoroutinefunction(obj) and name.startswith("test"):
        pytest.mark.anyio(obj)


# Its autouse fixture fails any test that sent a cluster a script call or MULTI across slots.
pytest_plugins = ["tests.support.cross_slot"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# A caller that runs the suite many times (scripts/mutation: once per mutant) starts the
# servers once itself, in throwaway folders of its own, and names their ports here.
SHARED_POSTGRES_PORT = "STOREFRONT_TEST_POSTGRES_PORT"
SHARED_REDIS_PORT = "STOREFRONT_TEST_REDIS_PORT"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if port := os.environ.get(SHARED_POSTGRES_PORT):
        yield PostgresServer(Path(os.devnull), int(port))
        return
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """The suite's Redis: a server of its own, or in cluster mode (tests.support.redis_mode) the
    session's cluster, which tests reach through its `url` as well."""
    if CLUSTER:
        yield request.getfixturevalue("redis_cluster")
        return
    if port := os.environ.get(SHARED_REDIS_PORT):
        yield RedisServer(Path(os.devnull), int(port))
        return
    with throwaway_redis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A Redis Cluster of 3 masters and 3 replicas (started when a test first asks for it). A
    test that kills a node starts a cluster of its own."""
    with throwaway_redis_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def catalog_db_url(postgres: PostgresServer) -> str:
    url = postgres.url("catalog_shared")
    asyncio.run(migrate(url, SQL_ROOT / "catalog"))
    return url


@pytest.fixture
def fresh_db_url(postgres: PostgresServer) -> str:
    """The URL of a database that does not exist yet (migrations create it)."""
    return postgres.url(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def unique() -> Callable[[str], str]:
    """`unique("Shoes")` gives a name no other test uses."""
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{suffix}"


@pytest.fixture
def key_prefix() -> str:
    """The Redis key prefix this test's catalog and cart share (so they share a cache)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def catalog_settings(catalog_db_url: str, redis_server: RedisServer, key_prefix: str) -> CatalogSettings:
    return load_settings(
        CatalogSettings, service_env(catalog_db_url, redis_server.url, REDIS_KEY_PREFIX=key_prefix)
    )


@pytest.fixture
async def catalog_app(catalog_settings: CatalogSettings) -> AsyncIterator[Starlette]:
    """The catalog app with its lifespan running, so its pools are real."""
    app = create_catalog_app(catalog_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def catalog(catalog_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the catalog served in-process."""
    transport = httpx.ASGITransport(app=catalog_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
        yield client


@pytest.fixture(scope="session")
def cart_db_url(postgres: PostgresServer) -> str:
    url = postgres.url("cart_shared")
    asyncio.run(migrate(url, SQL_ROOT / "cart"))
    return url


@pytest.fixture
def cart_env(cart_db_url: str, redis_server: RedisServer, key_prefix: str) -> dict[str, str]:
    """The cart's environment; a test may change it before asking for `cart`."""
    return service_env(
        cart_db_url, redis_server.url, CATALOG_URL="http://catalog", REDIS_KEY_PREFIX=key_prefix
    )


@pytest.fixture
def catalog_transport(catalog_app: Starlette) -> httpx.AsyncBaseTransport:
    """How the cart reaches the catalog; a test may override it (say, with a dead one)."""
    return httpx.ASGITransport(app=catalog_app)


@contextlib.asynccontextmanager
async def serve_cart(
    env: dict[str, str], catalog_transport: httpx.AsyncBaseTransport
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """A cart app (lifespan running) for `env`, reaching the catalog through `catalog_transport`."""
    app = create_cart_app(load_settings(CartSettings, env), catalog_transport=catalog_transport)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://cart") as client,
    ):
        yield app, client


@pytest.fixture
async def cart_app(
    cart_env: dict[str, str], catalog_transport: httpx.AsyncBaseTransport
) -> AsyncIterator[Starlette]:
    async with serve_cart(cart_env, catalog_transport) as (app, _):
        yield app


@pytest.fixture
async def cart(cart_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the cart served in-process; it reads products from the in-process catalog."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cart_app), base_url="http://cart"
    ) as client:
        yield client


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('admin-1', roles=('admin',))}"}


@pytest.fixture
def shopper() -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('shopper-1')}"}


@pytest.fixture
def user() -> dict[str, str]:
    """A shopper no other test is, so their cart starts empty."""
    return as_user(f"user-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def new_category(catalog: httpx.AsyncClient, admin: dict[str, str], unique: Callable[[str], str]):
    """`await new_category(**fields)` creates a category through the API and returns its JSON."""

    async def create(**fields: Any) -> dict[str, Any]:
        body = {"name": unique(f"Category {uuid.uuid4().hex[:4]}"), **fields}
        response = await catalog.post("/api/categories", json=body, headers=admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return create


@pytest.fixture
def new_product(catalog: httpx.AsyncClient, admin: dict[str, str], unique: Callable[[str], str]):
    """`await new_product(**fields)` creates a product through the API and returns its JSON."""

    async def create(**fields: Any) -> dict[str, Any]:
        body = {
            "sku": unique(f"SKU-{uuid.uuid4().hex[:6]}"),
            "name": "Test product",
            "price": "10.00",
            "stock": 10,
            **fields,
        }
        response = await catalog.post("/api/products", json=body, headers=admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return create


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> tuple[InMemorySpanExporter, trace.Tracer]:
    """Tracing on for the event pipeline's spans, exported to memory by a provider of the
    test's own (the process's global one is left alone); and a tracer for a request's spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "enabled", lambda: True)
    monkeypatch.setattr(event_tracing, "TRACER", provider.get_tracer("test"))
    return exporter, provider.get_tracer("request")
