"""A database that crashes, or is down when a service starts: 503s with Retry-After, never a
500; one warning when it goes and one when it is back; the pools recover by themselves."""

import logging
import uuid

import httpx
import pytest

from app_cart.app import create_app as create_cart_app
from app_cart.settings import CartSettings
from app_product.app import create_app as create_catalog_app
from app_product.settings import CatalogSettings
from devtools.servers import throwaway_postgres
from shared.config import load_settings
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.env import as_user, service_env
from tests.support.waits import until

OUTAGE = "tag:storefront,2026:problem:database-unavailable"


@pytest.fixture
def own_postgres():
    """A server of this test's own: it is crashed and restarted."""
    with throwaway_postgres(durable=True) as server:
        yield server


async def serving(app):
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def outage_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "shared.http.app"]


async def recovery_logged(caplog) -> None:
    """Wait (with a deadline) for the warning that the database is back: the app probes it."""

    async def logged() -> bool:
        return len(outage_logs(caplog)) >= 2

    await until(logged, seconds=10)


async def answers_200(client: httpx.AsyncClient, path: str, headers=None) -> None:
    """Wait (with a deadline) until `path` answers 200: the pools recovered by themselves."""

    async def ok() -> bool:
        return (await client.get(path, headers=headers)).status_code == 200

    await until(ok, seconds=30, poll=0.1)


async def test_a_crash_is_503s_logged_once_and_the_catalog_recovers(own_postgres, redis_server, caplog):
    caplog.set_level(logging.WARNING)
    url = own_postgres.url("catalog")
    await migrate(url, SQL_ROOT / "catalog")
    app = create_catalog_app(load_settings(CatalogSettings, service_env(url, redis_server.url)))
    async with app.router.lifespan_context(app), await serving(app) as client:
        for _ in range(5):  # the pool holds idle connections, which the crash kills
            assert (await client.get("/api/products")).status_code == 200
        own_postgres.crash()
        answers = [await client.get("/api/products") for _ in range(20)]
        assert {a.status_code for a in answers} == {503}
        assert {a.json()["type"] for a in answers} == {OUTAGE}
        assert {a.headers["retry-after"] for a in answers} == {"2"}
        ready = await client.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["postgres"]["status"] == "down"
        own_postgres.start()
        await answers_200(client, "/api/products")
        await answers_200(client, "/ready")
        await recovery_logged(caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback, no 500
    [down, back] = outage_logs(caplog)
    assert down.startswith("PostgreSQL cannot be reached") and back.startswith(
        "PostgreSQL is reachable again"
    )


async def test_the_carts_read_pool_recovers_too(own_postgres, redis_server, caplog):
    """The cart page reads on its own pool (shared.storage.postgres.ReadPool)."""
    caplog.set_level(logging.WARNING)
    url = own_postgres.url("cart")
    await migrate(url, SQL_ROOT / "cart")
    env = service_env(url, redis_server.url, CATALOG_URL="http://catalog.invalid")
    app = create_cart_app(load_settings(CartSettings, env))
    user = as_user(f"u-{uuid.uuid4().hex[:8]}")
    async with app.router.lifespan_context(app), await serving(app) as client:
        for _ in range(3):
            assert (await client.get("/api/cart", headers=user)).status_code == 200
        own_postgres.crash()
        down = await client.get("/api/cart", headers=user)
        assert (down.status_code, down.json()["type"]) == (503, OUTAGE)
        assert down.headers["cache-control"] == "no-store"
        own_postgres.start()
        await answers_200(client, "/api/cart", headers=user)
        await recovery_logged(caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(outage_logs(caplog)) == 2


async def test_a_service_starts_while_the_database_is_down(own_postgres, redis_server, caplog):
    """It answers 503s rather than crash-looping, and serves once the database is up."""
    url = own_postgres.url("catalog")
    await migrate(url, SQL_ROOT / "catalog")
    own_postgres.crash()
    app = create_catalog_app(load_settings(CatalogSettings, service_env(url, redis_server.url)))
    async with app.router.lifespan_context(app), await serving(app) as client:
        answer = await client.get("/api/products/1")
        assert (answer.status_code, answer.json()["type"]) == (503, OUTAGE)
        own_postgres.start()
        await answers_200(client, "/api/products")
