"""`python -m devtools.dev_token --uid alice [--roles admin] [--ttl 3600]`: mint a development JWT.

Signs with JWT_SECRET (HS*) or, for RS/ES/EdDSA, with `--private-key FILE`, using the same
settings the services verify with, so the token works against a local `./scripts/run`.
Refuses to run with ENV=production: real tokens come from the auth service.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import jwt

from shared.config import HMAC_ALGORITHMS, Settings, SettingsError, exit_on_settings_error, load_settings


def mint(settings: Settings, uid: str, roles: list[str], ttl: int, private_key: str | None = None) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"uid": uid, "sub": uid, "roles": roles, "iat": now, "exp": now + ttl}
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    key = settings.jwt_secret if settings.jwt_algorithm in HMAC_ALGORITHMS else private_key
    if key is None:
        raise SettingsError("JWT_ALGORITHM", f"{settings.jwt_algorithm} tokens need --private-key")
    return jwt.encode(claims, key, algorithm=settings.jwt_algorithm)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/token", description="Mint a development JWT.")
    parser.add_argument("--uid", required=True, help="the user id (uid and sub claims)")
    parser.add_argument("--roles", default="", help="comma-separated roles, e.g. admin")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    parser.add_argument("--private-key", type=Path, help="PEM private key for RS*/ES*/EdDSA")
    args = parser.parse_args(argv)
    try:
        private_key = args.private_key.read_text() if args.private_key else None
    except OSError as exc:
        parser.error(f"--private-key: {exc}")  # exits with status 2, like a bad setting
    roles = [role for role in args.roles.split(",") if role]
    with exit_on_settings_error("token"):
        settings = load_settings(Settings)
        if settings.is_production:
            raise SettingsError("ENV", "is production; mint real tokens with the auth service")
        print(mint(settings, args.uid, roles, args.ttl, private_key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
