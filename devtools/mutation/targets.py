"""The core modules mutation testing covers, each with the tests that are meant to catch a
broken line in it; and the hand-written SQL and Lua mutants, each with the tests that must
fail on it."""

from __future__ import annotations

from dataclasses import dataclass

UNIT = "tests/unit"
IT = "tests/integration"


@dataclass(frozen=True)
class Target:
    modules: tuple[str, ...]
    tests: tuple[str, ...]


TARGETS: dict[str, Target] = {
    "handlers": Target(
        ("app_cart/worker/handlers.py", "app_cart/adapters/snapshots.py", "app_cart/domain/availability.py"),
        (f"{UNIT}/app_cart/worker", f"{UNIT}/app_cart/domain/test_availability.py", f"{IT}/app_cart/worker"),
    ),
    "consumer": Target(
        (
            "shared/events/consumer.py",
            "shared/events/reclaim.py",
            "shared/events/dead_letters.py",
            "shared/events/status.py",
        ),
        (
            f"{IT}/app_cart/worker/test_worker.py",
            f"{IT}/app_cart/worker/test_worker_outages.py",
            f"{IT}/shared/events/test_dead_letters.py",
            f"{IT}/shared/events/test_status.py",
            f"{IT}/shared/events/test_consumer.py",
            f"{IT}/shared/events/test_reclaim.py",
        ),
    ),
    "relay": Target(
        (
            "app_product/outbox/relay.py",
            "app_product/outbox/healing.py",
            "app_product/outbox/record.py",
            "shared/events/publish.py",
            "shared/events/trim.py",
        ),
        (
            f"{IT}/app_product/outbox",
            f"{IT}/shared/events/test_trim.py",
            f"{IT}/shared/events/test_publish.py",
        ),
    ),
    "breaker": Target(
        ("shared/resilience/breaker.py",),
        (f"{IT}/shared/resilience/test_breaker.py", f"{IT}/shared/resilience/test_breaker_local.py"),
    ),
    "limiter": Target(
        (
            "shared/ratelimit/limiter.py",
            "shared/ratelimit/middleware.py",
            "shared/ratelimit/spec.py",
            "shared/ratelimit/identity.py",
        ),
        (f"{UNIT}/shared/ratelimit", f"{IT}/shared/ratelimit"),
    ),
    "product_cache": Target(
        (
            "shared/resilience/product_cache.py",
            "shared/resilience/cache_entries.py",
            "shared/resilience/invalidation.py",
        ),
        (
            f"{IT}/shared/resilience/test_product_cache.py",
            f"{IT}/shared/resilience/test_product_cache_paths.py",
            f"{IT}/shared/resilience/test_product_cache_failures.py",
        ),
    ),
    "promo": Target(
        (
            "app_cart/domain/promo.py",
            "app_cart/adapters/promo_codes.py",
            "app_cart/services/cart_promo.py",
            "app_cart/services/promos.py",
        ),
        (f"{UNIT}/app_cart/domain/test_promo.py", f"{IT}/app_cart/services/test_promo_codes.py"),
    ),
    "auth": Target(
        ("shared/http/auth.py",),
        (f"{UNIT}/shared/http/test_auth.py", f"{IT}/shared/http/test_auth.py"),
    ),
}


@dataclass(frozen=True)
class Mutant:
    """`old` replaced by `new` (once, and it must be there) in `path`; `tests` must then fail."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


_WORKER = (f"{IT}/app_cart/worker/test_worker.py",)
_CACHE = (f"{IT}/shared/resilience/test_product_cache.py",)
_RELAY = (f"{IT}/app_product/outbox",)

MUTANTS: tuple[Mutant, ...] = (
    # SQL
    Mutant(
        "snapshot version guard lets an older state in",
        "app_cart/adapters/snapshots.py",
        "i.product_version < e.version",
        "i.product_version <> e.version",
        _WORKER,
    ),
    Mutant(
        "a shopper's write rolls a newer snapshot back",
        "app_cart/adapters/carts.py",
        'newer = f"cart_items.product_version <= {version}"',
        'newer = f"cart_items.product_version >= 0"',
        _WORKER,
    ),
    Mutant(
        "the item upsert's quantity limit is off by one",
        "app_cart/adapters/carts.py",
        "EXCLUDED.quantity <= :limit",
        "EXCLUDED.quantity <= :limit + 1",
        (f"{IT}/app_cart/services/test_cart.py",),
    ),
    Mutant(
        "a promo code's last use is taken twice",
        "app_cart/adapters/promo_codes.py",
        "OR uses < max_uses)",
        "OR uses <= max_uses)",
        (f"{IT}/app_cart/services/test_promo_codes.py",),
    ),
    Mutant(
        "an update ignores the version it expects",
        "shared/storage/postgres.py",
        "WHERE id = :id AND version = :version",
        "WHERE id = :id AND version >= :version",
        (f"{IT}/app_product/catalog/test_products.py", f"{IT}/app_product/catalog/test_categories.py"),
    ),
    Mutant(
        "the relay sends sent rows again",
        "app_product/outbox/repo.py",
        "FROM outbox WHERE sent_at IS NULL ORDER BY id",
        "FROM outbox ORDER BY id",
        _RELAY,
    ),
    Mutant(
        "healing resends too little",
        "app_product/outbox/repo.py",
        "(stream_ms, stream_seq) > ($2, $3)",
        "(stream_ms, stream_seq) > ($2 + 1, $3)",
        _RELAY,
    ),
    # Lua
    Mutant(
        "the limiter admits one request over the limit",
        "shared/ratelimit/rate_limit.lua",
        "if count >= limit then",
        "if count > limit then",
        (f"{IT}/shared/ratelimit/test_limiter.py",),
    ),
    Mutant(
        "the breaker admits one probe too many",
        "shared/resilience/breaker.lua",
        "if taken < probes then",
        "if taken <= probes then",
        (f"{IT}/shared/resilience/test_breaker.py",),
    ),
    Mutant(
        "the cache takes an old product over a tombstone",
        "shared/resilience/cache_write.lua",
        "allowed = version >= held.min_version",
        "allowed = version >= held.min_version - 1",
        _CACHE,
    ),
    Mutant(
        "the cache ignores the epoch",
        "shared/resilience/cache_write.lua",
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then",
        "if false then",
        _CACHE,
    ),
    Mutant(
        "a reclaim takes an event from whoever holds it",
        "shared/events/claim_pending.lua",
        "if #pending == 0 or pending[1][2] ~= ARGV[3] then",
        "if #pending == 0 then",
        _WORKER,
    ),
    Mutant(
        "parking ignores who holds the event",
        "shared/events/park_event.lua",
        "if #pending == 0 or pending[1][2] ~= ARGV[3] then",
        "if #pending == 0 then",
        _WORKER,
    ),
    Mutant(
        "a dead event holds trimming back",
        "shared/events/stream_trim.lua",
        "if consumer['name'] ~= ARGV[2] and consumer['pending'] > 0 then",
        "if consumer['pending'] > 0 then",
        (f"{IT}/shared/events/test_trim.py",),
    ),
    Mutant(
        "the relay's append does not notice a lost stream",
        "shared/events/stream_append.lua",
        "if held ~= ARGV[1] then\n      -- The epoch",
        "if false then\n      -- The epoch",
        _RELAY,
    ),
)
