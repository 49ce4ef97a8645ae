"""Every Redis key and channel name, in one place, readable in `redis-cli`.

All start with REDIS_KEY_PREFIX (default `storefront`), so services sharing a Redis cannot
collide and an operator can `SCAN` one application's keys. Keys a Lua script touches together
share a hash tag (`{...}`), so they land in one slot on a Redis Cluster.

What lives where, and for how long:
- `<p>:ratelimit:{<subject>}:<group>:<window>s`: sorted set, the admitted requests of one
  subject in one window; expires one window after the last admitted request.
- `<p>:breaker:{<name>}`: hash, a circuit breaker's state; no TTL: it is a few fields per
  downstream, and losing it would forget that a downstream is failing.
- `<p>:breaker:{<name>}:probes`: sorted set, half-open probe leases (score: lease expiry);
  expires with its longest lease.
"""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def rate_limit(self, subject: str, group: str, window_seconds: int) -> str:
        return f"{self.prefix}:ratelimit:{{{subject}}}:{group}:{window_seconds}s"

    def breaker(self, name: str) -> str:
        return f"{self.prefix}:breaker:{{{name}}}"

    def breaker_probes(self, name: str) -> str:
        return f"{self.prefix}:breaker:{{{name}}}:probes"
