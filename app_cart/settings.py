"""Settings of the cart service: the shared ones, the cart's defaults, and how it reaches the catalog."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from shared.config import Port, Seconds, Settings
from shared.resilience.breaker import BreakerConfig
from shared.resilience.cache_entries import CacheConfig

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

    # The circuit breaker around the catalog (shared by every cart instance, in Redis).
    breaker_window_seconds: Seconds = 10.0
    breaker_bucket_seconds: Seconds = 1.0
    breaker_min_calls: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 10
    breaker_failure_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    breaker_slow_call_seconds: Seconds = 2.0
    breaker_slow_call_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    breaker_recovery_seconds: Seconds = 30.0
    breaker_half_open_probes: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 3
    breaker_probe_lease_seconds: Seconds = 5.0

    # The Redis product cache (see shared/product_cache.py).
    cache_ttl_seconds: Seconds = 300.0
    cache_stale_seconds: Annotated[float, msgspec.Meta(gt=0, le=30 * 86400)] = 86400.0
    cache_negative_ttl_seconds: Seconds = 30.0
    cache_lock_seconds: Seconds = 3.0

    # The worker applying catalog events (python -m app_cart.worker).
    worker_batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
    worker_block_seconds: Seconds = 2.0
    # A failed event is retried once idle for base * 2^(deliveries - 1) seconds, and parked as
    # dead (consumer "dead" of the group) after this many deliveries.
    worker_retry_base_seconds: Seconds = 1.0
    worker_max_deliveries: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    # A worker refreshes its heartbeat every loop; once it has expired the worker counts as
    # dead and others take over its pending events. Longer than the slowest batch.
    worker_heartbeat_seconds: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 30

    # The anti-entropy sweep (app_cart/worker/sweep.py): how often one worker walks every product
    # held in carts and wishlists (0 turns it off), and how many it asks the catalog at a time.
    sweep_interval_seconds: Annotated[float, msgspec.Meta(ge=0, le=7 * 86400)] = 300.0
    sweep_page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 100

    max_item_quantity: Annotated[int, msgspec.Meta(ge=1, le=999)] = 99
    # The catalog's batch endpoint takes 100 ids, so a whole cart is one request.
    max_cart_items: Annotated[int, msgspec.Meta(ge=1, le=100)] = 100
    idempotency_ttl_seconds: Annotated[int, msgspec.Meta(ge=60, le=7 * 86400)] = 86400

    def breaker_config(self) -> BreakerConfig:
        return BreakerConfig(
            window_seconds=self.breaker_window_seconds,
            bucket_seconds=self.breaker_bucket_seconds,
            min_calls=self.breaker_min_calls,
            failure_rate=self.breaker_failure_rate,
            slow_call_seconds=self.breaker_slow_call_seconds,
            slow_call_rate=self.breaker_slow_call_rate,
            recovery_seconds=self.breaker_recovery_seconds,
            half_open_probes=self.breaker_half_open_probes,
            probe_lease_seconds=self.breaker_probe_lease_seconds,
        )

    def cache_config(self) -> CacheConfig:
        return CacheConfig(
            ttl_seconds=self.cache_ttl_seconds,
            stale_seconds=self.cache_stale_seconds,
            negative_ttl_seconds=self.cache_negative_ttl_seconds,
            lock_seconds=self.cache_lock_seconds,
        )
