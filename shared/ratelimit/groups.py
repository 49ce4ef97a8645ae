"""Route groups: which of a service's limits (RATE_LIMIT_<GROUP>) a request counts against."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Scope

RATE_LIMIT_GROUPS = ("reads", "writes", "admin", "internal")
EXEMPT_PATHS = frozenset({"/health", "/ready"})
# Names a request's group; None for a request that is never limited.
Classifier = Callable[[Scope], str | None]


def default_groups(scope: Scope) -> str | None:
    """reads, writes, internal; None for what is never limited (health checks)."""
    path = scope["path"]
    if path in EXEMPT_PATHS:
        return None
    if path.startswith("/internal/"):
        return "internal"
    return "reads" if scope["method"] in ("GET", "HEAD", "OPTIONS") else "writes"
