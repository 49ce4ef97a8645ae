"""Real processes for tests: services on free ports, workers and relays in burst mode, and the
waits that poll them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx

from devtools.servers import free_port
from shared.events.envelope import encode, new_event, stream_fields
from tests.support.env import service_env


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)  # polling a separate process; there is nothing to wait on instead


async def a_cart_holding(cart_db: str, product_ids: Iterable[int]) -> None:
    """A new cart in the (migrated) cart database holding each product at version 1, for 1.00."""
    conn = await asyncpg.connect(cart_db)
    try:
        cart_id = await conn.fetchval(
            "INSERT INTO carts (user_id) VALUES ($1) RETURNING id", f"u-{uuid.uuid4().hex[:8]}"
        )
        await conn.executemany(
            "INSERT INTO cart_items (cart_id, product_id, quantity, product_name, price_when_added,"
            " current_price, is_available, product_version) VALUES ($1, $2, 1, 'p', 1, 1, true, 1)",
            [(cart_id, product_id) for product_id in product_ids],
        )
    finally:
        await conn.close()


def product_updated(product_id: int, version: int) -> dict[Any, Any]:
    """The stream entry of a `product.updated` event: the product at `version`, for `<version>.00`."""
    state = {"id": product_id, "name": f"p{version}", "price": f"{version}.00", "stock": 5}
    state |= {"is_active": True, "category_name": None}
    event = new_event("product.updated", product_id, version, state, ["price"])
    return stream_fields(str(event.id), event.type, product_id, version, encode(event).decode())


async def burst(module: str, env: dict[str, str]) -> str:
    """`python -m <module> --burst` in the service environment `env`; it must succeed. Its log."""
    done = await anyio.run_process(
        [sys.executable, "-m", module, "--burst"], env={**os.environ, **env}, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stderr.decode()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def running_service(
    module: str, env: dict[str, str], log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m <module>` on a free port, until the block ends; yields (base URL, process).
    Its log (stderr) is kept in memory, or written to `log` for a process that logs a lot."""
    port = free_port()
    with contextlib.ExitStack() as files:
        stderr = files.enter_context(log.open("w")) if log is not None else subprocess.PIPE
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**os.environ, **env, "PORT": str(port)},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or answers(f"{base}/health"))
        assert process.poll() is None, process.communicate()
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def new_prefix() -> str:
    """Redis keys for one system: its catalog and carts share them (the product cache, the
    breaker), and no other test's state (an open breaker, say) can leak in."""
    return f"e2e{uuid.uuid4().hex[:8]}"


def running_catalog(
    database_url: str, redis_url: str, *, prefix: str, log: Path | None = None
) -> contextlib.AbstractContextManager[tuple[str, subprocess.Popen[str]]]:
    env = service_env(database_url, redis_url, REDIS_KEY_PREFIX=prefix)
    return running_service("app_product", env, log)


def running_cart(
    database_url: str,
    redis_url: str,
    catalog_url: str,
    *,
    prefix: str,
    log: Path | None = None,
    **extra: str,
) -> contextlib.AbstractContextManager[tuple[str, subprocess.Popen[str]]]:
    env = service_env(database_url, redis_url, CATALOG_URL=catalog_url, REDIS_KEY_PREFIX=prefix, **extra)
    return running_service("app_cart", env, log)


def prepare(database_url: str, redis_url: str, service: str, *commands: list[str], **extra: str) -> None:
    """Migrate `service`'s database (and run `commands`, such as loading demo data)."""
    env = {**os.environ, **service_env(database_url, redis_url, **extra)}
    for command in (["shared.storage.migrations", service, "--database-url", database_url], *commands):
        subprocess.run(
            [sys.executable, "-m", *command], env=env, check=True, capture_output=True, timeout=120
        )
