"""Rate limits and trusted proxies as the settings spell them, parsed and checked.

`RATE_LIMIT_READS=600/60,20/1` means at most 600 requests in any 60 seconds and at most 20 in
any second; every limit of a group is enforced. `TRUSTED_PROXIES=10.0.0.0/8,192.168.1.5`.

A limit is at most MAX_REQUESTS: the exact log keeps one entry (~10 bytes) per admitted
request, so a key costs up to a megabyte at that limit, per subject.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MAX_REQUESTS = 100_000
_LIMIT = re.compile(r"^\s*([1-9][0-9]{0,6})\s*/\s*([1-9][0-9]{0,5})\s*\Z")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Limit:
    requests: int
    window_seconds: int


def parse_limits(spec: str) -> tuple[Limit, ...]:
    limits = []
    for part in spec.split(","):
        match = _LIMIT.match(part)
        if match is None:
            raise ValueError(f"{part.strip()!r} is not <requests>/<seconds> (e.g. 600/60)")
        limit = Limit(int(match.group(1)), int(match.group(2)))
        if limit.requests > MAX_REQUESTS:
            raise ValueError(f"{part.strip()!r}: at most {MAX_REQUESTS} requests per window")
        limits.append(limit)
    windows = [limit.window_seconds for limit in limits]
    if len(set(windows)) != len(windows):
        raise ValueError("two limits share a window; give each window once")
    return tuple(limits)


def parse_networks(spec: str) -> tuple[Network, ...]:
    networks = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or network") from None
    return tuple(networks)
