"""Every Redis key and channel name, in one place, readable in `redis-cli`.

All start with REDIS_KEY_PREFIX (default `storefront`), so services sharing a Redis cannot
collide and an operator can `SCAN` one application's keys. The keys of one subject's rate limits
share a hash tag (`{...}`), as do a breaker's, so each group lands in one slot on a Redis
Cluster (but see the last paragraph).

What lives where, and for how long:
- `<p>:ratelimit:{<subject>}:<group>:<window>s`: list, the times (us, newest first) of one
  subject's admitted requests in one window; expires one window after the last of them.
- `<p>:breaker:{<name>}`: hash, a circuit breaker's state; no TTL: it is a few fields per
  downstream, and losing it would forget that a downstream is failing.
- `<p>:breaker:{<name>}:probes`: sorted set, half-open probe leases (score: lease expiry);
  expires with its longest lease.
- `<p>:product:<id>`: string, a cached product (msgspec JSON) or a tombstone; expires after
  CACHE_STALE_SECONDS (a 404: CACHE_NEGATIVE_TTL; a tombstone: CACHE_TOMBSTONE_SECONDS).
- `<p>:product:<id>:lock`: string, who is fetching that product; expires after CACHE_LOCK_SECONDS.
- `<p>:product-invalidations`: pub/sub channel, the ids of changed products ("12,13").
- `<p>:catalog-events`: stream, every catalog event in commit order (fields: type,
  aggregate_id, version, event_id, event: the JSON); no TTL: it is trimmed by the relay.
  Its consumer group `cart` is read by the cart's workers.
- `<p>:catalog-events:epoch`: string, a value the relay writes beside the stream (its
  `relay_state.epoch` in the catalog's database); no TTL. Redis loses it with the stream's data,
  so its absence tells the relay that events it sent may be gone (app_product/outbox/healing.py).
- `<p>:catalog-events:partitions`: string, the STREAM_PARTITIONS in force, written by the relay;
  no TTL (`shared.events.partitions`: how the count may change).
- `<p>:product-cache:epoch`: string, a random value the cart creates when it finds none; no TTL.
  A cache write carries the value its reader saw, and is refused if it changed: a fetch that
  raced with a Redis data loss cannot put back a product older than a lost tombstone.
- `<p>:catalog-events:errors`: hash, message id -> the last error of an event being retried;
  no TTL: a field is removed when its event is applied on a retry or parked (in the same MULTI
  or script); one whose event an operator acknowledged by hand stays until deleted.
- `<p>:catalog-events:dead:<message id>`: hash, a parked (dead) event: its payload, type, last
  error, when it was parked and how often it was delivered; no TTL: it waits for an operator
  (replay or discard), and it keeps the payload even if the stream is trimmed past it. Written
  in the script that parks the entry (`park_event.lua`), so no dead entry lacks one. An
  event trimmed before it was applied gets one without its payload (type `?`, the error says
  so) and is acknowledged instead of parked, so it is not in `dead`'s pending list.
- `<p>:worker:<consumer>:heartbeat`: string, when that worker last refreshed it (every third
  of WORKER_HEARTBEAT_SECONDS, from a task beside its loop); expires after
  WORKER_HEARTBEAT_SECONDS (30 s), so a key present means a live worker.

Redis Cluster (REDIS_CLUSTER=true): a script or a transaction may only touch keys of one hash
slot, so in cluster mode the keys that are used together share a hash tag, and the names of a
single Redis stay as above (`Keys(prefix)`; `Keys(prefix, cluster=True)` for a cluster):
- the product cache is cut into CACHE_SHARDS shards by product id; a product, its lock and its
  shard's epoch share the shard's tag: `<p>:product:{cache.<k>.<n>}:<id>`,
  `<p>:product:{cache.<k>.<n>}:<id>:lock`, `<p>:product-cache:{cache.<k>.<n>}:epoch`. A cart read
  is one MGET per shard, pipelined (one request per master); a cache write one script call per
  shard. Each shard has its own epoch because each master can lose its data on its own.
- the event stream's partition i (STREAM_PARTITIONS, see `shared.events.partitions`) and
  everything kept beside it share its tag: `<p>:catalog-events:{events.<i>.<n>}` and its
  `:epoch`, `:errors` and `:dead:<message id>`. On a single Redis, partition 0 keeps the names
  above and partition i > 0 is `<p>:catalog-events:<i>` (with the same suffixes).
- rate limits and breakers are tagged already (above), in both modes.
`<n>` in a tag is the first number that puts the tag's slot in the k-th (or i-th) equal share
of the 16384 slots, so shards and partitions spread evenly over masters that hold equal
ranges of slots (as `redis-cli --cluster create` assigns them): with as many partitions as
masters, one per master.
"""

from __future__ import annotations

import itertools
from functools import cache

from redis.crc import key_slot

from shared.config import Settings

# The consumer group of the cart's workers on the catalog event stream, and the consumer that
# holds parked (dead) events in it.
CART_GROUP = "cart"
DEAD_CONSUMER = "dead"


# Shards of the product cache on a cluster: several per master, so that they spread evenly.
CACHE_SHARDS = 16
_SLOTS = 16384


@cache
def spread_tag(name: str, index: int, count: int) -> str:
    """A hash tag `name.index.n` whose slot lies in the index-th of `count` equal shares of
    the slots (the first such n: a few tries on average)."""
    low, high = index * _SLOTS // count, (index + 1) * _SLOTS // count
    for n in itertools.count():
        tag = f"{name}.{index}.{n}"
        if low <= key_slot(tag.encode()) < high:
            return tag
    raise AssertionError("unreachable: itertools.count() never ends")


class Keys:
    def __init__(self, prefix: str, *, cluster: bool = False, partitions: int = 1) -> None:
        self.prefix = prefix
        self.cluster = cluster
        self.partitions = partitions

    def rate_limit(self, subject: str, group: str, window_seconds: int) -> str:
        return f"{self.prefix}:ratelimit:{{{subject}}}:{group}:{window_seconds}s"

    def breaker(self, name: str) -> str:
        return f"{self.prefix}:breaker:{{{name}}}"

    def breaker_probes(self, name: str) -> str:
        return f"{self.prefix}:breaker:{{{name}}}:probes"

    def cache_shard(self, product_id: int) -> int:
        """The cache shard of a product: keys of one shard are in one slot (0 on a single Redis)."""
        return product_id % CACHE_SHARDS if self.cluster else 0

    def _shard_tag(self, product_id: int) -> str:
        return f"{{{spread_tag('cache', self.cache_shard(product_id), CACHE_SHARDS)}}}:"

    def product(self, product_id: int) -> str:
        tag = self._shard_tag(product_id) if self.cluster else ""
        return f"{self.prefix}:product:{tag}{product_id}"

    def product_lock(self, product_id: int) -> str:
        return f"{self.product(product_id)}:lock"

    def cache_epoch(self, shard: int = 0) -> str:
        if self.cluster:
            return f"{self.prefix}:product-cache:{{{spread_tag('cache', shard, CACHE_SHARDS)}}}:epoch"
        return f"{self.prefix}:product-cache:epoch"

    def product_invalidations(self) -> str:
        return f"{self.prefix}:product-invalidations"

    def catalog_events(self, partition: int = 0) -> str:
        if self.cluster:
            return f"{self.prefix}:catalog-events:{{{spread_tag('events', partition, self.partitions)}}}"
        return f"{self.prefix}:catalog-events" + (f":{partition}" if partition else "")

    def stream_partitions(self) -> str:
        return f"{self.prefix}:catalog-events:partitions"

    def stream_epoch(self, partition: int = 0) -> str:
        return f"{self.catalog_events(partition)}:epoch"

    def dead_event(self, message_id: str, partition: int = 0) -> str:
        return f"{self.catalog_events(partition)}:dead:{message_id}"

    def event_errors(self, partition: int = 0) -> str:
        return f"{self.catalog_events(partition)}:errors"

    def worker_heartbeat(self, consumer: str) -> str:
        return f"{self.prefix}:worker:{consumer}:heartbeat"


def keys_for(settings: Settings) -> Keys:
    """The key names of a service's settings: prefix, cluster mode and stream partitions."""
    return Keys(
        settings.redis_key_prefix, cluster=settings.redis_cluster, partitions=settings.stream_partitions
    )
