"""Settings of the catalog service: the shared ones, with the catalog's defaults."""

from __future__ import annotations

from shared.config import Port, Seconds, Settings


class CatalogSettings(Settings, frozen=True, kw_only=True, rename="upper"):
    port: Port = 8001
    database_url: str = "postgresql://postgres@127.0.0.1:5432/storefront_catalog"
    # How long a changed product's cache tombstone lives: longer than any cart fetch in flight.
    cache_tombstone_seconds: Seconds = 60.0
