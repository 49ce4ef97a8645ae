"""Liveness never touches a dependency; readiness reports each one and fails when one is down."""

import httpx

from app_product.app import create_app
from app_product.settings import CatalogSettings
from devtools.servers import throwaway_postgres, throwaway_redis
from shared.config import load_settings
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.env import service_env


async def serve(settings: CatalogSettings):
    app = create_app(settings)
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://catalog")


async def test_ready_reports_each_dependency(catalog):
    response = await catalog.get("/ready")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"postgres", "postgres_reads", "redis"}
    assert all(check["status"] == "up" and check["latency_ms"] >= 0 for check in checks.values())


async def test_the_carts_read_pool_is_a_dependency_of_its_own(cart):
    checks = (await cart.get("/ready")).json()["checks"]
    assert set(checks) == {"postgres", "postgres_reads", "redis"}
    assert checks["postgres_reads"]["status"] == "up"


async def test_redis_down_makes_ready_503_but_health_200(catalog_db_url):
    with throwaway_redis() as redis:  # a single server of its own, in either mode of the suite
        env = service_env(catalog_db_url, redis.url, READY_TIMEOUT="0.5", REDIS_CLUSTER="false")
        settings = load_settings(CatalogSettings, env)
        app, client = await serve(settings)
        async with app.router.lifespan_context(app), client:
            assert (await client.get("/ready")).status_code == 200
            redis.stop()
            response = await client.get("/ready")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            body = response.json()
            assert body["checks"]["redis"]["status"] == "down"
            assert body["checks"]["postgres"]["status"] == "up"
            assert "127.0.0.1" not in response.text  # addresses stay in the server log
            assert (await client.get("/health")).status_code == 200


async def test_postgres_down_makes_ready_503(redis_server):
    with throwaway_postgres() as postgres:
        url = postgres.url("catalog")
        await migrate(url, SQL_ROOT / "catalog")
        settings = load_settings(CatalogSettings, service_env(url, redis_server.url, READY_TIMEOUT="0.5"))
        app, client = await serve(settings)
        async with app.router.lifespan_context(app), client:
            postgres.stop()
            response = await client.get("/ready")
            assert response.status_code == 503
            assert response.json()["checks"]["postgres"]["status"] == "down"
            assert (await client.get("/health")).status_code == 200
