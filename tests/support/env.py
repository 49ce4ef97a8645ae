"""The environment and tokens tests give the services: a test secret, limits far above what
tests send, a Redis key prefix of their own."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from tests.support.redis_mode import mode_env

TEST_JWT_SECRET = "storefront-tests-secret-0123456789abcdef"


def service_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "ENV": "test",
        # Every app a test starts has Redis keys of its own (breaker state, limits, cache),
        # unless the test passes one prefix to several apps.
        "REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        # Tests share users and IPs across hundreds of requests: limits far above that, so
        # every request still goes through the limiter without being refused.
        **{f"RATE_LIMIT_{group}": "100000/60" for group in ("READS", "WRITES", "ADMIN", "INTERNAL")},
        **mode_env(),  # REDIS_CLUSTER when the suite runs on the cluster
        **extra,
    }


def make_token(uid: str = "user-1", roles: tuple[str, ...] = (), ttl: int = 3600, **claims: Any) -> str:
    """A signed test token. Modules build some at import: an hour outlives any suite run (a
    shorter life once expired them mid-run, on a slow machine)."""
    now = int(time.time())
    payload = {"uid": uid, "roles": list(roles), "iat": now, "exp": now + ttl, **claims}
    return jwt.encode(payload, TEST_JWT_SECRET, algorithm="HS256")


def as_user(uid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(uid)}"}
