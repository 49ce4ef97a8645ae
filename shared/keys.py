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

The cache's scripts and MGET span many products, and one rate-limit script call decides the
requests of many subjects (shared.ratelimit.limiter batches them), so they assume one Redis (or a
proxy that keeps them together), not a Cluster; the breaker's keys are cluster-safe.
"""

from __future__ import annotations

# The consumer group of the cart's workers on the catalog event stream, and the consumer that
# holds parked (dead) events in it.
CART_GROUP = "cart"
DEAD_CONSUMER = "dead"


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def rate_limit(self, subject: str, group: str, window_seconds: int) -> str:
        return f"{self.prefix}:ratelimit:{{{subject}}}:{group}:{window_seconds}s"

    def breaker(self, name: str) -> str:
        return f"{self.prefix}:breaker:{{{name}}}"

    def breaker_probes(self, name: str) -> str:
        return f"{self.prefix}:breaker:{{{name}}}:probes"

    def product(self, product_id: int) -> str:
        return f"{self.prefix}:product:{product_id}"

    def product_lock(self, product_id: int) -> str:
        return f"{self.prefix}:product:{product_id}:lock"

    def product_invalidations(self) -> str:
        return f"{self.prefix}:product-invalidations"

    def catalog_events(self) -> str:
        return f"{self.prefix}:catalog-events"

    def stream_epoch(self) -> str:
        return f"{self.prefix}:catalog-events:epoch"

    def cache_epoch(self) -> str:
        return f"{self.prefix}:product-cache:epoch"

    def dead_event(self, message_id: str) -> str:
        return f"{self.prefix}:catalog-events:dead:{message_id}"

    def event_errors(self) -> str:
        return f"{self.prefix}:catalog-events:errors"

    def worker_heartbeat(self, consumer: str) -> str:
        return f"{self.prefix}:worker:{consumer}:heartbeat"
