"""What a browser on another origin gets: CORS for the listed origins only, preflights answered
before authentication and rate limiting, and gzip for large JSON bodies."""

import contextlib

import httpx
import pytest

from app_product.app import create_app
from app_product.settings import CatalogSettings
from shared.config import load_settings
from tests.support.env import service_env

SHOP = "https://shop.example"


@pytest.fixture
def client_for(catalog_db_url, redis_server, key_prefix):
    """`async with client_for(**settings)`: a catalog app with these settings, and its client."""

    @contextlib.asynccontextmanager
    async def make(**extra: str):
        env = service_env(catalog_db_url, redis_server.url, REDIS_KEY_PREFIX=key_prefix, **extra)
        app = create_app(load_settings(CatalogSettings, env))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://catalog") as client,
        ):
            yield client

    return make


PREFLIGHT = {
    "Origin": SHOP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


async def test_a_preflight_from_a_listed_origin_is_allowed_and_cached(client_for):
    async with client_for(CORS_ALLOW_ORIGINS=f"{SHOP}, https://admin.example") as client:
        response = await client.options("/api/products", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["access-control-max-age"] == "600"
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert allowed >= {
        "authorization",
        "content-type",
        "idempotency-key",
        "if-match",
        "if-none-match",
        "x-request-id",
    }
    assert set(response.headers["access-control-allow-methods"].replace(" ", "").split(",")) >= {
        "GET",
        "POST",
        "PATCH",
        "DELETE",
    }


async def test_an_answer_to_a_listed_origin_exposes_what_a_frontend_reads(client_for):
    async with client_for(CORS_ALLOW_ORIGINS=SHOP) as client:
        response = await client.get("/api/products", headers={"Origin": SHOP})
    assert response.headers["access-control-allow-origin"] == SHOP
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    assert exposed >= {
        "ETag",
        "Location",
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "X-Request-ID",
        "Idempotent-Replayed",
    }


@pytest.mark.parametrize("origins", ["", "https://other.example"])
async def test_an_origin_not_listed_gets_no_cors_header(client_for, origins):
    async with client_for(CORS_ALLOW_ORIGINS=origins) as client:
        preflight = await client.options("/api/products", headers=PREFLIGHT)
        simple = await client.get("/api/products", headers={"Origin": SHOP})
    assert preflight.status_code == 403
    assert preflight.headers["content-type"] == "application/problem+json"
    assert simple.status_code == 200
    for response in (preflight, simple):
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    if origins:  # a shared cache must not give this answer to an allowed origin
        assert "origin" in simple.headers["vary"].lower()


async def test_preflights_are_answered_before_the_rate_limiter_and_are_not_counted(client_for):
    async with client_for(CORS_ALLOW_ORIGINS=SHOP, RATE_LIMIT_READS="3/60") as client:
        for _ in range(10):
            assert (await client.options("/api/products", headers=PREFLIGHT)).status_code == 200
        first = await client.get("/api/products")
    assert first.status_code == 200
    assert first.headers["ratelimit-remaining"] == "2"  # the preflights took nothing


async def test_a_large_json_body_is_gzipped_for_a_client_that_accepts_it(client_for, new_product):
    for _ in range(5):
        await new_product(description="x" * 300)
    async with client_for() as client:
        zipped = await client.get("/api/products?limit=5", headers={"Accept-Encoding": "gzip"})
        plain = await client.get("/api/products?limit=5", headers={"Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in zipped.headers["vary"].lower()
    assert int(zipped.headers["content-length"]) < int(plain.headers["content-length"])
    assert "content-encoding" not in plain.headers
    assert zipped.json() == plain.json()  # httpx decompressed it


async def test_small_bodies_and_a_disabled_setting_are_not_compressed(client_for, new_product):
    product = await new_product()
    async with client_for() as client:
        small = await client.get(f"/api/products/{product['id']}", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers
    async with client_for(HTTP_GZIP="false") as client:
        large = await client.get("/api/products?limit=50", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in large.headers
