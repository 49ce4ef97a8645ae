"""Fixtures for end-to-end tests: services as real processes on real ports."""

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.devservers import free_port
from tests.conftest import service_env


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)  # polling a separate process; there is nothing to wait on instead


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
    database_url: str, redis_url: str, catalog_url: str, *, prefix: str, **extra: str
) -> contextlib.AbstractContextManager[tuple[str, subprocess.Popen[str]]]:
    env = service_env(database_url, redis_url, CATALOG_URL=catalog_url, REDIS_KEY_PREFIX=prefix, **extra)
    return running_service("app_cart", env)


@pytest.fixture
def catalog_process(catalog_db_url, redis_server) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with running_catalog(catalog_db_url, redis_server.url, prefix=new_prefix()) as running:
        yield running


def prepare(database_url: str, redis_url: str, service: str, *commands: list[str]) -> None:
    """Migrate `service`'s database (and run `commands`, such as loading demo data)."""
    env = {**os.environ, **service_env(database_url, redis_url)}
    for command in (["shared.migrations", service, "--database-url", database_url], *commands):
        subprocess.run(
            [sys.executable, "-m", *command], env=env, check=True, capture_output=True, timeout=120
        )


@pytest.fixture
def demo_system(postgres, redis_server) -> Iterator[tuple[str, str]]:
    """Catalog and cart processes on fresh databases set up as ./scripts/run does (migrated, demo
    data loaded); yields their base URLs."""
    catalog_db, cart_db = (
        postgres.url(f"demo_{uuid.uuid4().hex[:8]}"),
        postgres.url(f"demo_{uuid.uuid4().hex[:8]}"),
    )
    prepare(catalog_db, redis_server.url, "catalog", ["app_product.demo"])
    prepare(cart_db, redis_server.url, "cart")
    prefix = new_prefix()
    with (
        running_catalog(catalog_db, redis_server.url, prefix=prefix) as (catalog, _),
        running_cart(cart_db, redis_server.url, catalog, prefix=prefix) as (cart, _),
    ):
        yield catalog, cart
