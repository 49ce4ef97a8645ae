"""GET /metrics: who may read it, and that it counts what the services do."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.env import make_token

SCRAPER = {"Authorization": f"Bearer {make_token('prometheus', roles=('metrics',))}"}


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    """Each sample of the exposition, as 'name{labels}' -> value."""
    response = await client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def count(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sample of `name` whose labels include `labels` (0 if there is none)."""
    for key, value in samples.items():
        metric, _, label_text = key.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if metric == name and all(found.get(k) == v for k, v in labels.items()):
            return value
    return 0.0


def grew(before: dict[str, float], after: dict[str, float], name: str, **labels: str) -> float:
    return count(after, name, **labels) - count(before, name, **labels)


async def test_metrics_need_the_metrics_role(cart: httpx.AsyncClient, shopper: dict[str, str]) -> None:
    assert (await cart.get("/metrics")).status_code == 401
    service = {"Authorization": f"Bearer {make_token('catalog', roles=('service',))}"}
    for caller in (shopper, service):  # the service role posts events: it does not scrape
        refused = await cart.get("/metrics", headers=caller)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"


async def test_requests_are_counted_by_route_template(catalog: httpx.AsyncClient, new_product: Any) -> None:
    product = await new_product()
    before = await scrape(catalog)
    for _ in range(3):
        assert (await catalog.get(f"/api/products/{product['id']}")).status_code == 200
    assert (await catalog.get("/no/such/page")).status_code == 404
    after = await scrape(catalog)

    route = {"method": "GET", "route": "/api/products/{id}", "status": "200"}
    assert grew(before, after, "storefront_http_requests_total", **route) == 3
    assert grew(before, after, "storefront_http_requests_total", route="<unmatched>", status="404") == 1
    # The raw path never becomes a label: one series per route, whatever the ids.
    assert not any(f'/api/products/{product["id"]}"' in key for key in after)
    assert (
        grew(before, after, "storefront_http_request_duration_seconds_count", route="/api/products/{id}") == 3
    )
    assert not any("_created" in key for key in after)  # no creation-time twin per series


async def test_cart_counts_rate_limit_decisions_and_cache_lookups(
    cart: httpx.AsyncClient, user: dict[str, str], new_product: Any
) -> None:
    product = await new_product()
    added = await cart.post("/api/cart/items", json={"product_id": product["id"]}, headers=user)
    assert added.status_code == 200, added.text
    before = await scrape(cart)
    for _ in range(2):
        assert (await cart.get("/api/cart", headers=user)).status_code == 200
    after = await scrape(cart)

    # Two reads and the first scrape were admitted; the product was in the cache both times.
    assert grew(before, after, "storefront_rate_limit_decisions_total", outcome="admitted") == 3
    assert grew(before, after, "storefront_product_cache_lookups_total", result="hit") == 2
    assert grew(before, after, "storefront_product_cache_lookups_total", result="miss") == 0
    assert count(after, "storefront_breaker_redis_fallbacks_total", breaker="product_service") == 0
