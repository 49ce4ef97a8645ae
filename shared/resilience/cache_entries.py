"""What the product cache holds: the product data the cart needs, the cache entry around it
(freshness, fetch time, or a tombstone), and how entries are read and judged."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

XFETCH_BETA = 1.0


class ProductData(msgspec.Struct, frozen=True, kw_only=True):
    """What the cart needs of a product (other catalog fields are ignored when decoding)."""

    id: int
    name: str
    price: Decimal
    stock: int
    is_active: bool
    category_name: str | None
    version: int
    # Entries cached before items kept their category decode without it.
    category_id: int | None = None


class _Entry(msgspec.Struct, kw_only=True, omit_defaults=True):
    product: ProductData | None = None
    fetched_at: float = 0.0
    fresh_until: float = 0.0
    delta: float = 0.0
    # Set only in a tombstone the catalog left: a product at least this new may replace it.
    min_version: int | None = None
    deleted: bool = False


_ENTRY = msgspec.json.Decoder(_Entry)  # built once: decoding 20 entries per cart read is hot

# Fetches products by id from the source of truth; absent ids do not exist. Raises
# Unavailable when it cannot answer.
Fetch = Callable[[list[int]], Awaitable[dict[int, ProductData]]]


@dataclass
class Lookup:
    """What the cache (and the catalog behind it) could say about some products."""

    found: dict[int, ProductData] = field(default_factory=dict)
    stale: set[int] = field(default_factory=set)  # served from an expired entry: the catalog failed
    unknown: set[int] = field(default_factory=set)  # neither catalog nor cache could answer


@dataclass(frozen=True)
class CacheConfig:
    ttl_seconds: float = 300.0
    stale_seconds: float = 86400.0
    negative_ttl_seconds: float = 30.0
    lock_seconds: float = 3.0


def _decode(blob: bytes | str | None) -> _Entry | None:
    if blob is None:
        return None
    try:
        return _ENTRY.decode(blob)
    except msgspec.DecodeError:  # written by an incompatible version: treat as a miss
        return None


def _refresh_early(entry: _Entry, now: float) -> bool:
    """XFetch: refresh before expiry with probability rising as expiry nears, scaled by the
    fetch time (1 - random() lies in (0, 1], so its log is finite and not positive)."""
    return now - entry.delta * XFETCH_BETA * math.log(1.0 - random.random()) >= entry.fresh_until
