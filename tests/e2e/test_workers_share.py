"""Two worker processes share the group: 10,000 events, each applied by one of them, once."""

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid

import anyio
import asyncpg
import pytest

from shared.keys import CART_GROUP
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.env import service_env
from tests.support.processes import a_cart_holding, product_updated, wait_until
from tests.support.redis_mode import client, test_keys

pytestmark = pytest.mark.e2e

PRODUCTS, VERSIONS = 1000, 10


async def prepare(cart_db: str, redis_url: str, prefix: str) -> None:
    await migrate(cart_db, SQL_ROOT / "cart")
    await a_cart_holding(cart_db, range(1, PRODUCTS + 1))
    async with client(redis_url) as redis:
        stream = test_keys(prefix).catalog_events()
        async with redis.pipeline(transaction=False) as pipe:
            for version in range(2, VERSIONS + 2):
                for product_id in range(1, PRODUCTS + 1):
                    pipe.xadd(stream, product_updated(product_id, version))
            await pipe.execute()


def test_two_workers_share_ten_thousand_events_and_apply_each_once(postgres, redis_server):
    prefix, cart_db = f"t{uuid.uuid4().hex[:8]}", postgres.url(f"load_{uuid.uuid4().hex[:8]}")
    asyncio.run(prepare(cart_db, redis_server.url, prefix))
    env = {
        **os.environ,
        **service_env(cart_db, redis_server.url, REDIS_KEY_PREFIX=prefix, WORKER_BATCH_SIZE="200"),
    }
    command = [sys.executable, "-m", "app_cart.worker", "--burst"]
    started = time.perf_counter()
    workers = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    logs = [worker.communicate(timeout=300)[1] for worker in workers]
    elapsed = time.perf_counter() - started
    assert [worker.returncode for worker in workers] == [0, 0], logs
    applied = [int(re.search(r"(\d+) event\(s\) applied, 0 failed", log).group(1)) for log in logs]  # type: ignore[union-attr]
    assert sum(applied) == PRODUCTS * VERSIONS  # each event applied by exactly one worker
    assert min(applied) > 0  # the load was shared
    rate = sum(applied) / elapsed
    print(f"2 workers applied {sum(applied)} events in {elapsed:.1f}s ({rate:.0f}/s), split {applied}")

    async def check() -> None:
        async with client(redis_server.url) as redis:
            assert (await redis.xpending(test_keys(prefix).catalog_events(), CART_GROUP))["pending"] == 0
        conn = await asyncpg.connect(cart_db)
        try:
            versions = await conn.fetch(
                "SELECT DISTINCT product_version, current_price::text FROM cart_items"
            )
        finally:
            await conn.close()
        assert [(r["product_version"], r["current_price"]) for r in versions] == [
            (VERSIONS + 1, f"{VERSIONS + 1}.00")
        ]

    asyncio.run(check())


def test_a_worker_killed_mid_batch_is_taken_over_and_nothing_is_applied_twice_in_effect(
    postgres, redis_server
):
    prefix, cart_db = f"t{uuid.uuid4().hex[:8]}", postgres.url(f"kill_{uuid.uuid4().hex[:8]}")
    asyncio.run(prepare(cart_db, redis_server.url, prefix))
    settings = {
        "REDIS_KEY_PREFIX": prefix,
        "WORKER_BATCH_SIZE": "1000",  # ten batches: one is killed in its middle
        "WORKER_HEARTBEAT_SECONDS": "1",
        "WORKER_RETRY_BASE_SECONDS": "0.2",
    }
    env = {**os.environ, **service_env(cart_db, redis_server.url, **settings)}

    async def progress() -> int:
        conn = await asyncpg.connect(cart_db)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM cart_items WHERE product_version > 1"))
        finally:
            await conn.close()

    async def kill_mid_batch(worker: subprocess.Popen[bytes]) -> None:
        """Hold one item row: the worker's next batch, read and not acknowledged, blocks on it
        (its transaction waits on the lock); kill the worker there, then let the row go. (Its
        server process then finds no COMMIT coming: the batch is never committed.)"""
        conn = await asyncpg.connect(cart_db)
        try:
            async with conn.transaction():
                await conn.execute("SELECT 1 FROM cart_items WHERE product_id = 1 FOR UPDATE")
                with anyio.fail_after(30):
                    while not await conn.fetchval(  # noqa: ASYNC110 (another process: polled)
                        "SELECT pg_stat_clear_snapshot(), count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'",
                        column=1,
                    ):
                        await anyio.sleep(0.02)
                worker.kill()  # SIGKILL, in the middle of a batch
                worker.wait(timeout=10)
        finally:
            await conn.close()

    with subprocess.Popen(
        [sys.executable, "-m", "app_cart.worker"], env=env, stderr=subprocess.DEVNULL
    ) as first:
        wait_until(lambda: asyncio.run(progress()) > 0, timeout=60)  # a batch committed
        asyncio.run(kill_mid_batch(first))
    stream, heartbeat_pattern = test_keys(prefix).catalog_events(), test_keys(prefix).worker_heartbeat("*")

    async def orphaned() -> tuple[int, int]:
        async with client(redis_server.url) as redis:
            pending = (await redis.xpending(stream, CART_GROUP))["pending"]
            beats = [key async for key in redis.scan_iter(match=heartbeat_pattern)]
        return pending, len(beats)

    pending, _ = asyncio.run(orphaned())
    assert pending > 0  # the dead worker's batch: read, never acknowledged
    wait_until(lambda: asyncio.run(orphaned())[1] == 0, timeout=10)  # its heartbeat expires
    second = subprocess.run(
        [sys.executable, "-m", "app_cart.worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    assert "0 failed" in second.stderr
    assert asyncio.run(orphaned())[0] == 0  # every event acknowledged

    async def final_state() -> list[tuple[int, str]]:
        conn = await asyncpg.connect(cart_db)
        try:
            rows = await conn.fetch("SELECT DISTINCT product_version, current_price::text FROM cart_items")
        finally:
            await conn.close()
        return [(row["product_version"], row["current_price"]) for row in rows]

    # Events applied by the first worker and applied again after the takeover changed nothing
    # the second time: every item ends at its product's newest version.
    assert asyncio.run(final_state()) == [(VERSIONS + 1, f"{VERSIONS + 1}.00")]
