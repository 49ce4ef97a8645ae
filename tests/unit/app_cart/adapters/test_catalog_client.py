"""How the catalog's answers feed the circuit breaker: the catalog is an `httpx.MockTransport`, the
breaker a stand-in that records the outcomes reported, the cache a pass-through to the fetch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app_cart.adapters.catalog_client import CatalogUnavailable, ProductClient
from app_cart.api.problems import PROBLEMS
from shared.resilience.breaker import BreakerOpen, Outcome, Permit
from shared.resilience.cache_entries import Fetch, ProductData

Handler = Callable[[httpx.Request], httpx.Response]


class RecordingBreaker:
    """Admits every call (or refuses all, `retry_after` seconds) and records what is reported."""

    def __init__(self) -> None:
        self.refuse_for: float | None = None
        self.permits: list[Permit] = []
        self.reported: list[tuple[Permit, Outcome, float]] = []

    async def acquire(self) -> Permit:
        if self.refuse_for is not None:
            raise BreakerOpen("product_service", self.refuse_for)
        permit = Permit(generation=4, token=f"token-{len(self.permits)}", probe=False, local=False)
        self.permits.append(permit)
        return permit

    async def report(self, permit: Permit, outcome: Outcome, duration_seconds: float) -> str:
        self.reported.append((permit, outcome, duration_seconds))
        return "recorded"

    @property
    def outcomes(self) -> list[Outcome]:
        return [outcome for _, outcome, _ in self.reported]


class PassThroughCache:
    """The ProductCache's `refresh` without Redis: straight to the catalog."""

    async def refresh(self, ids: Iterable[int], fetch: Fetch) -> dict[int, ProductData]:
        return await fetch(list(ids))


class Catalog:
    """The catalog's side: answers with `handler`, remembering every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def product_json(product_id: int) -> dict[str, Any]:
    return {
        "id": product_id,
        "sku": f"SKU-{product_id}",  # a field the cart does not read
        "name": f"Product {product_id}",
        "price": "12.50",
        "stock": 3,
        "is_active": True,
        "category_name": "Kitchen",
        "version": 2,
    }


@pytest.fixture
def breaker() -> RecordingBreaker:
    return RecordingBreaker()


@pytest.fixture
async def client_for(breaker: RecordingBreaker) -> AsyncIterator[Callable[[Catalog], ProductClient]]:
    """`client_for(catalog)`: a ProductClient reaching `catalog`, closed after the test."""
    clients: list[ProductClient] = []

    def make(catalog: Catalog) -> ProductClient:
        client = ProductClient(
            "http://catalog",
            breaker=breaker,  # type: ignore[arg-type]
            cache=PassThroughCache(),  # type: ignore[arg-type]
            connect_timeout=1,
            read_timeout=1,
            max_connections=2,
            transport=httpx.MockTransport(catalog),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def test_catalog_unavailable_is_a_503_problem():
    assert PROBLEMS[CatalogUnavailable].status == 503


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_5xx_answer_is_a_failure_and_the_catalog_is_unavailable(client_for, breaker, status):
    catalog = Catalog(lambda request: httpx.Response(status, json={"detail": "boom"}))
    with pytest.raises(CatalogUnavailable):
        await client_for(catalog).get_many([1, 2])
    assert breaker.outcomes == [Outcome.FAILURE]
    assert breaker.reported[0][0] is breaker.permits[0]  # reported on the permit it was given
    assert len(catalog.requests) == 1


@pytest.mark.parametrize("status", [400, 404, 422, 429])
async def test_a_4xx_answer_is_ignored_by_the_breaker_and_the_catalog_is_unavailable(
    client_for, breaker, status
):
    catalog = Catalog(lambda request: httpx.Response(status, json={"detail": "no"}))
    with pytest.raises(CatalogUnavailable):
        await client_for(catalog).get_many([1])
    assert breaker.outcomes == [Outcome.IGNORED]


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b'{"items": [{"id": "one"}]}',  # JSON, but not the batch's shape
        b'{"products": []}',
    ],
)
async def test_a_200_with_a_body_the_cart_cannot_read_is_a_failure(client_for, breaker, body):
    catalog = Catalog(lambda request: httpx.Response(200, content=body))
    with pytest.raises(CatalogUnavailable):
        await client_for(catalog).get_many([1])
    # A catalog answering garbage is failing: counted, so it opens the breaker.
    assert breaker.outcomes == [Outcome.FAILURE]


async def test_a_200_with_a_good_body_is_a_success_and_gives_the_products(client_for, breaker):
    catalog = Catalog(
        lambda request: httpx.Response(
            200, json={"items": [product_json(1), product_json(3)], "next_cursor": None, "missing": [2]}
        )
    )
    found = await client_for(catalog).get_many([3, 1, 2])
    assert breaker.outcomes == [Outcome.SUCCESS]
    assert sorted(found) == [1, 3]
    assert found[1] == ProductData(
        id=1,
        name="Product 1",
        price=Decimal("12.50"),
        stock=3,
        is_active=True,
        category_name="Kitchen",
        version=2,
    )
    (request,) = catalog.requests
    assert request.url.path == "/api/products"
    assert sorted(request.url.params["ids"].split(",")) == ["1", "2", "3"]


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")]
)
async def test_a_connection_error_is_a_failure_and_the_catalog_is_unavailable(client_for, breaker, error):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(CatalogUnavailable):
        await client_for(Catalog(fail)).get_many([1])
    assert breaker.outcomes == [Outcome.FAILURE]


@pytest.mark.parametrize(("retry_after", "seconds"), [(0.2, 1), (0.0, 1), (1.0, 1), (2.3, 3)])
async def test_an_open_breaker_is_unavailable_with_retry_after_and_sends_nothing(
    client_for, breaker, retry_after, seconds
):
    breaker.refuse_for = retry_after
    catalog = Catalog(lambda request: httpx.Response(200, json={"items": []}))
    with pytest.raises(CatalogUnavailable) as refused:
        await client_for(catalog).get_many([1])
    assert refused.value.retry_after == seconds
    assert refused.value.retry_after >= 1
    assert catalog.requests == []
    assert breaker.reported == []
