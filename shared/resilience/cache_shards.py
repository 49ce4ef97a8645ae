"""The product cache cut by shard: on a Redis Cluster a script's keys must share a slot, so the
cache's epochs, writes and reads go per shard (`shared.keys`: a product, its lock and its
shard's epoch share a hash tag). On a single Redis there is one shard and one of each."""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Sequence

import msgspec
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from shared.keys import Keys
from shared.resilience.cache_entries import CacheConfig, ProductData, _Entry
from shared.storage.slots import grouped


def write_calls(
    keys: Keys,
    config: CacheConfig,
    ids: list[int],
    fetched: dict[int, ProductData],
    delta: float,
    epochs: dict[int, str],
) -> list[tuple[list[str], list[str | int]]]:
    """`cache_write.lua`'s calls storing what was fetched: one per shard, carrying the shard's
    epoch read before the fetch; a shard whose epoch Redis could not say is not written."""
    now, c = time.time(), config
    calls: list[tuple[list[str], list[str | int]]] = []
    for shard, members in grouped(ids, keys.cache_shard).items():
        if shard not in epochs:
            continue
        call_keys, args = [keys.cache_epoch(shard)], list[str | int]([epochs[shard]])
        for pid in members:
            product = fetched.get(pid)
            if product is None:
                fresh, ttl, version = c.negative_ttl_seconds, c.negative_ttl_seconds, -1
            else:
                fresh, ttl, version = (
                    c.ttl_seconds * random.uniform(0.9, 1.1),
                    c.stale_seconds,
                    product.version,
                )
            entry = _Entry(product=product, fetched_at=now, fresh_until=now + fresh, delta=delta)
            call_keys.append(keys.product(pid))
            args += [msgspec.json.encode(entry).decode(), version, math.ceil(ttl * 1000)]
        calls.append((call_keys, args))
    return calls


def ask_epoch(pipe: Pipeline, key: str) -> None:
    """Queue what reads a shard's epoch, making one if Redis has none (it lost its data)."""
    pipe.set(key, uuid.uuid4().hex, nx=True)
    pipe.get(key)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def masters(cluster: RedisCluster, keys: Sequence[str]) -> set[str]:
    """The masters that hold `keys`, as the cluster client knows them now."""
    nodes = cluster.nodes_manager
    return {nodes.get_node_from_slot(key_slot(key.encode())).name for key in keys}
