"""Settings of the catalog service: the shared ones, with the catalog's defaults."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared.config import Port, Seconds, Settings


class CatalogSettings(Settings, frozen=True, kw_only=True, rename="upper"):
    port: Port = 8001
    database_url: str = "postgresql://postgres@127.0.0.1:5432/storefront_catalog"
    # How long a changed product's cache tombstone lives: longer than any cart fetch in flight.
    cache_tombstone_seconds: Seconds = 60.0
    # How long a browser or CDN may keep a public read (product, listing, category) before
    # revalidating it with If-None-Match: short, so bursts are absorbed and changes show soon.
    http_cache_max_age: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 5

    # The outbox relay (python -m app_product.relay).
    # One script call appends a batch, and Redis runs nothing else meanwhile: kept small.
    relay_batch_size: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 500
    relay_poll_seconds: Seconds = 1.0
    outbox_retention_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 90)] = 72
    # Stream entries read and acknowledged by every consumer group are trimmed once older than
    # this (shared/stream_trim.py): recent history stays for operators to look at.
    stream_retention_seconds: Annotated[float, msgspec.Meta(ge=0, le=30 * 86400)] = 3600.0
