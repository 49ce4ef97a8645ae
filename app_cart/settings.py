"""Settings of the cart service: the shared ones, the cart's defaults, and how it reaches the catalog."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from shared.config import Port, Seconds, Settings

PoolSize = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class CartSettings(Settings, frozen=True, kw_only=True, rename="upper"):
    port: Port = 8002
    database_url: str = "postgresql://postgres@127.0.0.1:5432/storefront_cart"

    url_schemes: ClassVar[dict[str, frozenset[str]]] = {
        **Settings.url_schemes,
        "CATALOG_URL": frozenset({"http", "https"}),
    }

    catalog_url: str = "http://127.0.0.1:8001"
    catalog_connect_timeout: Seconds = 1.0
    catalog_read_timeout: Seconds = 2.0
    catalog_max_connections: PoolSize = 100

    max_item_quantity: Annotated[int, msgspec.Meta(ge=1, le=999)] = 99
    # The catalog's batch endpoint takes 100 ids, so a whole cart is one request.
    max_cart_items: Annotated[int, msgspec.Meta(ge=1, le=100)] = 100
    idempotency_ttl_seconds: Annotated[int, msgspec.Meta(ge=60, le=7 * 86400)] = 86400
