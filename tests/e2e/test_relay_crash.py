"""A relay SIGKILLed between its XADD and marking the rows sent: duplicates appear, effects do not.

No fault injection in the relay: the test holds row locks on the outbox rows. The relay reads
them without locks, appends them to the stream, then waits on those locks to mark them sent;
that is where it is killed.
"""

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import anyio
import asyncpg
import pytest

from app_product.app import open_catalog
from app_product.catalog import products
from app_product.catalog.models import ProductCreate, ProductPatch
from app_product.settings import CatalogSettings
from shared.config import load_settings
from shared.http.versioning import ExpectedVersion
from shared.keys import CART_GROUP
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.env import service_env
from tests.support.processes import a_cart_holding, burst
from tests.support.redis_mode import client, test_keys

pytestmark = pytest.mark.e2e


async def a_repriced_product_in_a_cart(catalog_env: dict[str, str], cart_db: str) -> int:
    """A product created at 1.00 and in a cart at that version, then repriced to 2.50; its two
    events wait in the outbox. Returns its id."""
    async with open_catalog(load_settings(CatalogSettings, catalog_env)) as catalog:
        product = await products.create_product(
            catalog, ProductCreate(sku=f"RC-{uuid.uuid4().hex[:6]}", name="p", price="1.00", stock=5)
        )
        await a_cart_holding(cart_db, [product.id])
        await products.update_product(
            catalog, product.id, ProductPatch(price="2.50"), ExpectedVersion(1, False)
        )
    return product.id


async def blocked_marking_sent(conn: asyncpg.Connection) -> int:
    """The server process of the relay's `UPDATE outbox SET sent_at`, once it waits on a lock."""
    with anyio.fail_after(20):
        while True:
            await conn.execute("SELECT pg_stat_clear_snapshot()")  # a transaction keeps its first view
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%UPDATE outbox SET sent_at%'"
            )
            if pid is not None:
                return int(pid)
            await anyio.sleep(0.02)


async def backend_alive(conn: asyncpg.Connection, pid: int) -> bool:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    return bool(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid))


async def test_a_relay_killed_before_marking_sent_duplicates_events_but_not_effects(
    postgres, redis_server, tmp_path: Path
):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    catalog_db, cart_db = (postgres.url(f"rc_{uuid.uuid4().hex[:10]}") for _ in range(2))
    await migrate(catalog_db, SQL_ROOT / "catalog")
    await migrate(cart_db, SQL_ROOT / "cart")
    catalog_env = service_env(catalog_db, redis_server.url, REDIS_KEY_PREFIX=prefix)
    cart_env = service_env(cart_db, redis_server.url, REDIS_KEY_PREFIX=prefix)
    product_id = await a_repriced_product_in_a_cart(catalog_env, cart_db)
    stream = test_keys(prefix).catalog_events()
    catalog, cart = await asyncpg.connect(catalog_db), await asyncpg.connect(cart_db)

    async def cart_item() -> tuple[str, str, int]:
        row = await cart.fetchrow(
            "SELECT xmin::text, current_price::text, product_version FROM cart_items WHERE product_id = $1",
            product_id,
        )
        return row["xmin"], row["current_price"], row["product_version"]

    async def unsent() -> int:
        return int(await catalog.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))

    async with client(redis_server.url) as redis:
        try:
            async with catalog.transaction():
                locked = await catalog.fetch(
                    "SELECT event_id::text FROM outbox WHERE sent_at IS NULL ORDER BY id FOR UPDATE"
                )
                event_ids = [row["event_id"] for row in locked]
                with (tmp_path / "relay.log").open("w") as log:  # the child keeps its own copy
                    relay = await anyio.open_process(
                        [sys.executable, "-m", "app_product.relay"],
                        env={**os.environ, **catalog_env},
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                    )
                try:
                    backend = await blocked_marking_sent(catalog)
                    sent = [fields[b"event_id"].decode() for _, fields in await redis.xrange(stream)]
                    assert (sent, await unsent()) == (event_ids, 2)  # in the stream, not marked sent
                    # A worker applies them meanwhile, as it would in production.
                    await burst("app_cart.worker", cart_env)
                    applied = await cart_item()
                    assert applied[1:] == ("2.50", 2)
                finally:
                    relay.kill()  # SIGKILL
                    with anyio.fail_after(10):
                        await relay.wait()
                # Its server process still waits with the UPDATE it had sent. PostgreSQL does not
                # read the socket of a waiting statement, but the relay's session checks its
                # client every 2 s (client_connection_check_interval): the UPDATE is cancelled,
                # never completed once our lock goes, and the relay lock is free for a standby.
                with anyio.fail_after(20):
                    while await backend_alive(catalog, backend):  # noqa: ASYNC110 (another process: polled)
                        await anyio.sleep(0.05)
            # Our locks are gone; a new relay finds the batch unsent and sends it again.
            assert await unsent() == 2
            await burst("app_product.relay", catalog_env)
            assert await unsent() == 0
            sent = [fields[b"event_id"].decode() for _, fields in await redis.xrange(stream)]
            assert Counter(sent) == {event_id: 2 for event_id in event_ids}  # duplicates appear
            await burst("app_cart.worker", cart_env)
            # Effects do not: the duplicates did not even rewrite the row (same xmin).
            assert await cart_item() == applied
            assert (await redis.xpending(stream, CART_GROUP))["pending"] == 0
            assert (await redis.xinfo_groups(stream))[0]["lag"] == 0  # every copy was read
        finally:
            await catalog.close()
            await cart.close()
