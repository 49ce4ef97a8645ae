"""Persistent local PostgreSQL and Redis for `scripts/run`, kept in a data folder of the checkout:

python -m devtools.devservers up [--dir .data]     # start if needed, print the URLs to export
python -m devtools.devservers down [--dir .data]   # stop them
python -m devtools.devservers check                # wait until the configured URLs answer
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from devtools.servers import DevServerError, PostgresServer, RedisServer, reachable_by, server_user

DEV_PG_PORT = 55432
DEV_REDIS_PORT = 56379


def _dev_postgres_dir(data: Path) -> Path:
    """`data/postgres`, unless the postgres user cannot reach the checkout (a root-only home):
    then a folder under /var/tmp named after the checkout, so each checkout keeps its own."""
    wanted = data.resolve() / "postgres"
    if reachable_by(server_user(), data.resolve()):
        return wanted
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"storefront-{digest}" / "postgres"


async def _postgres_answers(url: str) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except asyncpg.InvalidCatalogNameError:
        return  # the server answers; migrations will create the database
    await conn.close()


async def _redis_answers(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


def check(environ: dict[str, str], deadline_seconds: float = 15.0) -> list[str]:
    """Wait until the configured servers answer; the variables whose server never did."""
    probes = {
        "CATALOG_DATABASE_URL": _postgres_answers,
        "CART_DATABASE_URL": _postgres_answers,
        "REDIS_URL": _redis_answers,
    }
    failing = []
    for variable, probe in probes.items():
        url = environ.get(variable)
        if not url:
            failing.append(f"{variable} is not set")
            continue
        deadline = time.monotonic() + deadline_seconds
        while True:
            try:
                asyncio.run(probe(url))
                break
            except (OSError, asyncpg.PostgresError, RedisError, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    failing.append(f"{variable}: {type(exc).__name__}: {exc}")
                    break
                time.sleep(0.2)  # retrying a connection to a server that may still be starting
    return failing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.devservers", description="Local dev servers.")
    parser.add_argument("action", choices=["up", "down", "check"])
    parser.add_argument("--dir", type=Path, default=Path(".data"), help="data folder (default .data)")
    parser.add_argument("--pg-port", type=int, default=DEV_PG_PORT)
    parser.add_argument("--redis-port", type=int, default=DEV_REDIS_PORT)
    args = parser.parse_args(argv)
    if args.action == "check":
        failing = check(dict(os.environ))
        for problem in failing:
            print(f"devservers: cannot reach {problem}", file=sys.stderr)
        return 1 if failing else 0
    args.dir.mkdir(parents=True, exist_ok=True)
    if server_user() is not None:
        # The postgres user must be able to traverse into the data folder.
        args.dir.chmod(0o755)
    postgres = PostgresServer(_dev_postgres_dir(args.dir), args.pg_port)
    redis = RedisServer(args.dir.resolve() / "redis", args.redis_port, appendonly=True)
    try:
        if args.action == "down":
            postgres.stop_daemon()
            redis.stop_daemon()
            return 0
        postgres.start_daemon()
        redis.start_daemon()
    except (DevServerError, subprocess.CalledProcessError) as exc:
        print(f"devservers: {exc}", file=sys.stderr)
        return 1
    print(f"export CATALOG_DATABASE_URL={postgres.url('storefront_catalog')}")
    print(f"export CART_DATABASE_URL={postgres.url('storefront_cart')}")
    print(f"export REDIS_URL={redis.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
