"""What the benchmark scripts share: the JWT secret of the services they start, and those
services' environment (test mode, quiet logs, keys under a prefix of the benchmark's own)."""

from __future__ import annotations

SECRET = "bench-secret-0123456789abcdef-0123456789"


def service_env(database_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "ENV": "test",
        "JWT_SECRET": SECRET,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
    }
