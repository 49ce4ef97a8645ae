"""Fixtures for end-to-end tests: services as real processes on real ports."""

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

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
def running_catalog(database_url: str, redis_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m app_product` on a free port, until the block ends; yields (base URL, process)."""
    port = free_port()
    env = {**os.environ, **service_env(database_url, redis_url, PORT=str(port))}
    process = subprocess.Popen(
        [sys.executable, "-m", "app_product"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
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


@pytest.fixture
def catalog_process(catalog_db_url, redis_server) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with running_catalog(catalog_db_url, redis_server.url) as running:
        yield running


@pytest.fixture
def demo_catalog_process(fresh_db_url, redis_server) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A catalog on a fresh database set up as ./scripts/run does: migrated, demo data loaded."""
    env = {**os.environ, **service_env(fresh_db_url, redis_server.url)}
    for command in (["shared.migrations", "catalog", "--database-url", fresh_db_url], ["app_product.demo"]):
        subprocess.run(
            [sys.executable, "-m", *command], env=env, check=True, capture_output=True, timeout=120
        )
    with running_catalog(fresh_db_url, redis_server.url) as running:
        yield running
