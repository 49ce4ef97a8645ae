"""Fixtures for end-to-end tests: services as real processes on real ports."""

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.support.processes import new_prefix, prepare, running_cart, running_catalog


@pytest.fixture
def catalog_process(catalog_db_url, redis_server) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with running_catalog(catalog_db_url, redis_server.url, prefix=new_prefix()) as running:
        yield running


@pytest.fixture
def demo_system(postgres, redis_server) -> Iterator[tuple[str, str]]:
    """Catalog and cart processes on fresh databases set up as ./scripts/run does (migrated, demo
    data loaded); yields their base URLs."""
    catalog_db, cart_db = (
        postgres.url(f"demo_{uuid.uuid4().hex[:8]}"),
        postgres.url(f"demo_{uuid.uuid4().hex[:8]}"),
    )
    prepare(catalog_db, redis_server.url, "catalog", ["app_product.tools.demo"])
    prepare(cart_db, redis_server.url, "cart")
    prefix = new_prefix()
    with (
        running_catalog(catalog_db, redis_server.url, prefix=prefix) as (catalog, _),
        running_cart(cart_db, redis_server.url, catalog, prefix=prefix) as (cart, _),
    ):
        yield catalog, cart
