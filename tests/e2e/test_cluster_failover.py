"""The system on a Redis Cluster (3 masters, 3 replicas) with two of every process and the event
stream in three partitions, under load, while processes are killed and started again (as in
test_chaos) and a master is killed once: clients follow the new topology, nothing answers 500,
and afterwards every cart and wishlist snapshot equals the catalog and nothing is left unsent,
pending or dead, on any partition.

The cluster is the test's own: it kills a node. Figures are printed at the end (`-s`).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient

from devtools.redis_cluster import throwaway_redis_cluster
from devtools.servers import free_port
from shared.keys import Keys
from shared.storage.migrations import SQL_ROOT, migrate
from tests.e2e.test_chaos import (
    FAST,
    Tally,
    mismatches,
    pipeline_settled,
    read_forever,
    seed_carts,
    seed_catalog,
    write_forever,
)
from tests.support.env import service_env
from tests.support.supervisor import Supervised
from tests.support.waits import until

pytestmark = pytest.mark.e2e

PARTITIONS = 3
LOAD_SECONDS_BEFORE, LOAD_SECONDS_AFTER = 4.0, 8.0
CONVERGE_SECONDS = 45.0


async def unsettled(catalog_db: str, url: str, keys: Keys) -> list[str]:
    async with ClusterClient.from_url(url) as redis:
        streams = [keys.catalog_events(i) for i in range(PARTITIONS)]
        return await pipeline_settled(catalog_db, redis, streams)  # type: ignore[arg-type]


async def kill_processes(
    rng: random.Random, processes: list[Supervised], tally: Tally, stop: asyncio.Event
) -> None:
    """Kill a process now and then and start it again, as test_chaos does, until `stop`."""
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(0.5, 1.5))  # the pace of the chaos, not a wait on a result
        victim = rng.choice(processes)
        tally.kills[victim.name] += 1
        victim.kill()
        await asyncio.sleep(rng.uniform(0.2, 1.0))  # how long it stays down
        await asyncio.to_thread(victim.start)


async def test_a_master_killed_under_load_and_process_kills_loses_nothing(postgres, tmp_path: Path):
    rng, tally = random.Random(7), Tally()
    catalog_db, cart_db = (postgres.url(f"fo_{uuid.uuid4().hex[:8]}") for _ in range(2))
    await migrate(catalog_db, SQL_ROOT / "catalog")
    await migrate(cart_db, SQL_ROOT / "cart")
    with throwaway_redis_cluster() as cluster:
        prefix = f"fo{uuid.uuid4().hex[:6]}"
        keys = Keys(prefix, cluster=True, partitions=PARTITIONS)
        mode = {
            "REDIS_CLUSTER": "true",
            # Processes restarted after REDIS_URL's node died find the cluster through the others.
            "REDIS_CLUSTER_NODES": ",".join(f"127.0.0.1:{port}" for port in cluster.ports),
            "STREAM_PARTITIONS": str(PARTITIONS),
            "REDIS_KEY_PREFIX": prefix,
        }
        catalog_ports = [free_port(), free_port()]
        catalog_env = service_env(catalog_db, cluster.url, **mode, **FAST)
        cart_env = service_env(
            cart_db, cluster.url, CATALOG_URL=f"http://127.0.0.1:{catalog_ports[0]}", **mode, **FAST
        )
        processes = [
            *(
                Supervised(f"catalog-{i}", "app_product", catalog_env, tmp_path / f"catalog-{i}.log", port)
                for i, port in enumerate(catalog_ports)
            ),
            *(
                Supervised(f"cart-{i}", "app_cart", cart_env, tmp_path / f"cart-{i}.log", free_port())
                for i in range(2)
            ),
            *(
                Supervised(f"relay-{i}", "app_product.relay", catalog_env, tmp_path / f"relay-{i}.log")
                for i in range(2)
            ),
            *(
                Supervised(f"worker-{i}", "app_cart.worker", cart_env, tmp_path / f"worker-{i}.log")
                for i in range(2)
            ),
        ]
        try:
            for process in processes:
                await asyncio.to_thread(process.start)
            catalogs, carts = [p.url for p in processes[:2]], [p.url for p in processes[2:4]]
            await seed_catalog(catalogs[0])
            shoppers = await seed_carts(carts[0], rng)
            stop = asyncio.Event()
            load = [
                *(asyncio.create_task(write_forever(url, rng, tally, stop)) for url in catalogs),
                *(asyncio.create_task(read_forever(url, shoppers, tally, stop)) for url in carts),
            ]
            # Chaos all along: a process killed and started again every second or so.
            chaos = asyncio.create_task(kill_processes(rng, processes, tally, stop))
            await asyncio.sleep(LOAD_SECONDS_BEFORE)  # the load's length, not a wait on a result
            victim = cluster.master_of(keys.catalog_events(0))
            killed_at = time.monotonic()
            await asyncio.to_thread(cluster.kill, victim)
            await asyncio.to_thread(cluster.wait_for_failover)
            failover_seconds = time.monotonic() - killed_at
            await asyncio.sleep(LOAD_SECONDS_AFTER)  # load and chaos on the new topology
            stop.set()
            await asyncio.gather(*load, chaos)
            for process in processes:
                if not process.running:
                    await asyncio.to_thread(process.start)
            settled_at = time.monotonic()

            async def converged() -> bool:
                return not await mismatches(catalog_db, cart_db) and not await unsettled(
                    catalog_db, cluster.url, keys
                )

            try:
                await until(converged, seconds=CONVERGE_SECONDS, poll=0.5)
            except TimeoutError:
                wrong = await mismatches(catalog_db, cart_db)
                left = await unsettled(catalog_db, cluster.url, keys)
                pytest.fail(f"not converged: {left}; {len(wrong)} items wrong: {wrong[:5]}")
            converge_seconds = time.monotonic() - settled_at
        finally:
            for process in processes:
                process.kill()
    logs = await asyncio.to_thread(lambda: "".join(path.read_text() for path in tmp_path.glob("*.log")))
    print(f"\nfailover {failover_seconds:.1f} s; converged {converge_seconds:.1f} s after the load stopped")
    print(f"  kills {dict(tally.kills)}")
    print(f"  writes {dict(tally.writes)}")
    print(f"  reads {dict(tally.reads)}")
    print(f"  relay resends: {logs.count('Redis lost catalog events')}")
    assert "Traceback" not in logs  # no process died of anything but a kill
    assert 500 not in tally.reads and 500 not in tally.writes, (tally.reads, tally.writes)
    assert tally.reads[200] > 0 and tally.writes[200] > 0
