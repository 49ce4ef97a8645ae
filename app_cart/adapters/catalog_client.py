"""How the cart reads products: the catalog's batch endpoint, one request for a whole cart.

One pooled `httpx.AsyncClient` per process (opened in the app's lifespan), with connect and read
timeouts from settings. Every request asks the shared circuit breaker first and reports how it
went (connection errors, timeouts, 5xx and bodies it cannot read are failures; other 4xx are
ignored: the catalog works).
A catalog that cannot be reached, or a breaker that is open, raises `CatalogUnavailable`, a 503
problem (with Retry-After when the breaker says how long). Reads go through the Redis product
cache (`shared.resilience.product_cache`): `lookup`, for what a shopper sees (stale data allowed, marked).
Writes use `get`/`get_many`: current data from the catalog (refreshing the cache), or a 503.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable

import httpx
import msgspec
from redis.asyncio import Redis

from app_cart.settings import CartSettings
from shared.errors import Unavailable
from shared.keys import keys_for
from shared.resilience.breaker import BreakerOpen, CircuitBreaker, Outcome
from shared.resilience.cache_entries import Lookup, ProductData
from shared.resilience.product_cache import ProductCache

log = logging.getLogger(__name__)

BATCH_SIZE = 100  # the catalog's limit for ?ids=


CatalogProduct = ProductData


class _Batch(msgspec.Struct):
    items: list[CatalogProduct]


class CatalogUnavailable(Unavailable):
    """The catalog cannot answer (or its breaker is open); a 503 in the API."""


class ProductClient:
    def __init__(
        self,
        base_url: str,
        *,
        breaker: CircuitBreaker,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        cache: ProductCache,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.breaker = breaker
        self.cache = cache
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits, transport=transport)
        self._decoder = msgspec.json.Decoder(_Batch)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def lookup(self, ids: Iterable[int]) -> Lookup:
        """What is known of `ids`, through the cache; for reads, which may show stale data."""
        return await self.cache.get_many(ids, self._fetch_all)

    async def get_many(self, ids: Iterable[int]) -> dict[int, CatalogProduct]:
        """Current data for `ids` (absent ids do not exist), from the catalog itself; for writes,
        which check stock and must not act on a cached copy. CatalogUnavailable (a 503, with
        Retry-After while the breaker is open) if the catalog cannot answer."""
        return await self.cache.refresh(ids, self._fetch_all)

    async def get(self, product_id: int) -> CatalogProduct | None:
        return (await self.get_many([product_id])).get(product_id)

    async def _fetch_all(self, ids: list[int]) -> dict[int, CatalogProduct]:
        found: dict[int, CatalogProduct] = {}
        for start in range(0, len(ids), BATCH_SIZE):
            for product in await self._fetch(ids[start : start + BATCH_SIZE]):
                found[product.id] = product
        return found

    async def _fetch(self, ids: list[int]) -> list[CatalogProduct]:
        try:
            permit = await self.breaker.acquire()
        except BreakerOpen as refused:
            seconds = max(1, math.ceil(refused.retry_after))
            raise CatalogUnavailable(
                f"The catalog is failing; try again in {seconds} s.", retry_after=seconds
            ) from None
        started = time.perf_counter()
        try:
            response = await self._http.get("/api/products", params={"ids": ",".join(map(str, ids))})
        except httpx.HTTPError as exc:
            await self.breaker.report(permit, Outcome.FAILURE, time.perf_counter() - started)
            log.warning("catalog request failed: %s: %s", type(exc).__name__, exc)
            raise CatalogUnavailable("The catalog did not answer; try again shortly.") from None
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            failed = response.status_code >= 500
            await self.breaker.report(permit, Outcome.FAILURE if failed else Outcome.IGNORED, elapsed)
            log.warning("catalog answered %s: %s", response.status_code, response.text[:200])
            raise CatalogUnavailable(f"The catalog answered {response.status_code}; try again shortly.")
        try:
            products = self._decoder.decode(response.content).items
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            # A catalog answering what the cart cannot read is failing, as a 5xx is: counted,
            # so that it opens the breaker (and a half-open probe does not close it).
            await self.breaker.report(permit, Outcome.FAILURE, elapsed)
            log.error("catalog sent an unexpected body: %s", exc)
            raise CatalogUnavailable("The catalog sent an answer the cart cannot read.") from None
        await self.breaker.report(permit, Outcome.SUCCESS, elapsed)
        return products


BREAKER_NAME = "product_service"


def catalog_client(
    settings: CartSettings, redis: Redis, transport: httpx.AsyncBaseTransport | None = None
) -> ProductClient:
    """The process's catalog client, with the shared breaker and the product cache, as the
    settings say (the web app and the worker's sweep build theirs here)."""
    keys = keys_for(settings)
    return ProductClient(
        settings.catalog_url,
        breaker=CircuitBreaker(redis, keys, BREAKER_NAME, settings.breaker_config()),
        cache=ProductCache(redis, keys, settings.cache_config()),
        connect_timeout=settings.catalog_connect_timeout,
        read_timeout=settings.catalog_read_timeout,
        max_connections=settings.catalog_max_connections,
        transport=transport,
    )
