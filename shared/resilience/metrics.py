"""The breaker's and the product cache's metrics: the breaker's state read from Redis at scrape
time, and the counts each process keeps."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from redis.asyncio import Redis

from shared.keys import Keys
from shared.resilience.breaker import CircuitBreaker
from shared.resilience.product_cache import ProductCache
from shared.telemetry.metrics import Metrics, Sample

STATES = ("closed", "open", "half_open")


def expose_breaker(metrics: Metrics, breaker: CircuitBreaker, redis: Redis, keys: Keys) -> None:
    name = breaker.name
    metrics.counter(
        "storefront_breaker_redis_fallbacks",
        "Breaker decisions made with per-process state because Redis was unreachable.",
        lambda: breaker.fallbacks,
        breaker=name,
    )
    metrics.counter(
        "storefront_breaker_probes_admitted",
        "Half-open probe calls this process was admitted for.",
        lambda: breaker.probes_admitted,
        breaker=name,
    )
    for source in STATES:
        for target in STATES:
            if source != target:
                metrics.counter(
                    "storefront_breaker_transitions",
                    "Breaker transitions this process caused, by from and to state.",
                    functools.partial(breaker.transitions.__getitem__, (source, target)),
                    breaker=name,
                    **{"from": source, "to": target},
                )

    async def state() -> Sequence[Sample]:
        held = await redis.hget(keys.breaker(name), "state")
        current = held.decode() if isinstance(held, bytes) else (held or "closed")
        return [
            Sample(
                "storefront_breaker_state",
                "1 for the breaker's current state, as every instance shares it in Redis.",
                "gauge",
                float(current == candidate),
                {"breaker": name, "state": candidate},
            )
            for candidate in STATES
        ]

    metrics.probe(f"breaker_{name}", state)


def expose_cache(metrics: Metrics, cache: ProductCache) -> None:
    lookups = "Products looked up in the product cache, by result."
    metrics.counter("storefront_product_cache_lookups", lookups, lambda: cache.hits, result="hit")
    metrics.counter("storefront_product_cache_lookups", lookups, lambda: cache.misses, result="miss")
    for name, documentation, read in (
        (
            "stale_served",
            "Products served past their freshness because the catalog could not answer.",
            lambda: cache.stale_served,
        ),
        (
            "catalog_fetches",
            "Batch requests the product cache made to the catalog.",
            lambda: cache.catalog_fetches,
        ),
        (
            "redis_failures",
            "Product cache calls to Redis that failed (the catalog was read directly).",
            lambda: cache.redis_failures,
        ),
        (
            "reads",
            "Reads of cached entries from Redis (a cart's products are one read).",
            lambda: cache.reads,
        ),
        (
            "read_requests",
            "Requests those reads sent to Redis: one each on a single Redis, one per master a read"
            " reaches on a cluster (sent in parallel).",
            lambda: cache.read_requests,
        ),
        (
            "early_refreshes",
            "Fresh entries refreshed before they expired (XFetch).",
            lambda: cache.early_refreshes,
        ),
        (
            "writes_refused",
            "Fetched products the cache refused to store: a newer version or a tombstone held the key, or"
            " Redis lost its data during the fetch.",
            lambda: cache.writes_refused,
        ),
    ):
        metrics.counter(f"storefront_product_cache_{name}", documentation, read)
