"""How the cart reads products: the catalog's batch endpoint, one request for a whole cart.

One pooled `httpx.AsyncClient` per process (opened in the app's lifespan), with connect and read
timeouts from settings. A catalog that cannot be reached (connection error, timeout, 5xx, a body
that is not what the catalog sends) raises `CatalogUnavailable`, a 503 problem. `get_many` is the
one place reads go through: the Redis cache and the circuit breaker wrap it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal

import httpx
import msgspec

from shared.errors import ServiceUnavailable

log = logging.getLogger(__name__)

BATCH_SIZE = 100  # the catalog's limit for ?ids=


class CatalogProduct(msgspec.Struct, frozen=True, kw_only=True):
    """What the cart needs of a product. Other fields the catalog sends are ignored, so the
    catalog can grow without breaking the cart."""

    id: int
    name: str
    price: Decimal
    stock: int
    is_active: bool
    category_name: str | None
    version: int


class _Batch(msgspec.Struct):
    items: list[CatalogProduct]


class CatalogUnavailable(ServiceUnavailable):
    slug = "catalog-unavailable"
    title = "The catalog cannot be reached"


class ProductClient:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits, transport=transport)
        self._decoder = msgspec.json.Decoder(_Batch)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_many(self, ids: Iterable[int]) -> dict[int, CatalogProduct]:
        """The products named by `ids` that exist, by id; absent ids are simply not in the result."""
        wanted = sorted(set(ids))
        found: dict[int, CatalogProduct] = {}
        for start in range(0, len(wanted), BATCH_SIZE):
            for product in await self._fetch(wanted[start : start + BATCH_SIZE]):
                found[product.id] = product
        return found

    async def get(self, product_id: int) -> CatalogProduct | None:
        return (await self.get_many([product_id])).get(product_id)

    async def _fetch(self, ids: list[int]) -> list[CatalogProduct]:
        try:
            response = await self._http.get("/api/products", params={"ids": ",".join(map(str, ids))})
        except httpx.HTTPError as exc:
            log.warning("catalog request failed: %s: %s", type(exc).__name__, exc)
            raise CatalogUnavailable("The catalog did not answer; try again shortly.") from None
        if response.status_code != 200:
            log.warning("catalog answered %s: %s", response.status_code, response.text[:200])
            raise CatalogUnavailable(f"The catalog answered {response.status_code}; try again shortly.")
        try:
            return self._decoder.decode(response.content).items
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            log.error("catalog sent an unexpected body: %s", exc)
            raise CatalogUnavailable("The catalog sent an answer the cart cannot read.") from None
