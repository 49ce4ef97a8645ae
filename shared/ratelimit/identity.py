"""Who a request counts against: the user when a valid token is present, else the client's IP
(`X-Forwarded-For` is believed only from TRUSTED_PROXIES)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection
from starlette.types import Scope

from shared.http.auth import verified_principal
from shared.ratelimit.spec import Network


def subject(scope: Scope, trusted: Sequence[Network]) -> str:
    """The rate-limit subject of a request: `user:<id>` or `ip:<address>`."""
    principal = verified_principal(HTTPConnection(scope))
    if principal is not None:
        return f"user:{principal.user_id}"
    return f"ip:{client_ip(scope, trusted)}"


def client_ip(scope: Scope, trusted: Sequence[Network]) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest
    untrusted address in X-Forwarded-For (the ones to its left could be forged)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted or not _is_trusted(peer, trusted):
        return str(peer)
    forwarded = HTTPConnection(scope).headers.get("x-forwarded-for", "")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _is_trusted(hop, trusted):
            return hop
    return str(peer)


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
