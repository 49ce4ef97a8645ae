"""Our own chaos test, on one Redis and on a 3+3 Redis Cluster: catalog writes and cart reads
through two of every process (catalogs, carts, relays, workers) while processes, Redis nodes and
PostgreSQL are killed and restarted, and Redis once comes back empty while the workers are behind.
On the cluster the event stream has three partitions, every Redis kill is a master's (its replica
takes over), the data loss is one shard's, and once a master dies while its replica lags, so the
promoted replica lacks the last events the relay had appended (a lossy failover).

Afterwards, within a deadline, every cart and wishlist snapshot equals the catalog's product,
the outbox is sent, nothing is pending but dead events on any partition, no event is dead, no
request got a 500 (a 503 while the database is down is right) and no process died of anything
but a kill. The randomness is seeded; the seed is printed (`CHAOS_SEED=<n>` replays a run).
Figures are printed at the end: run with `-s` to see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.redis_cluster import throwaway_redis_cluster
from devtools.servers import PostgresServer, free_port, throwaway_postgres, throwaway_redis
from shared.keys import Keys
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.chaos_load import (
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
from tests.support.redis_faults import ClusterRedis, OneRedis, RedisFaults
from tests.support.supervisor import Supervised
from tests.support.waits import until

pytestmark = [pytest.mark.e2e, pytest.mark.own_redis]

CHAOS_SECONDS = 40.0
CONVERGE_SECONDS = 45.0
PARTITIONS = {"single": 1, "cluster": 3}


@contextlib.contextmanager
def redis_of_its_own(mode: str) -> Iterator[RedisFaults]:
    if mode == "cluster":
        with throwaway_redis_cluster() as cluster:
            yield ClusterRedis(cluster)
    else:
        with throwaway_redis(appendonly=True) as server:
            yield OneRedis(server)


async def chaos(
    rng: random.Random,
    processes: dict[str, Supervised],
    postgres: PostgresServer,
    redis: RedisFaults,
    streams: list[str],
    tally: Tally,
) -> int:
    """Kill something every second or so. A third of the way in, on a cluster, a lossy failover
    of the first partition's master; two thirds in, Redis comes back empty (on a cluster: the
    shard of the last partition) while the workers are behind (stopped, with events waiting).
    Returns how many entries the lossy failover lost."""
    started = time.monotonic()
    lossy_failover, lost_redis, lost_entries = isinstance(redis, ClusterRedis), False, 0
    while (elapsed := time.monotonic() - started) < CHAOS_SECONDS:
        await asyncio.sleep(rng.uniform(0.5, 1.5))  # the pace of the chaos, not a wait on a result
        if lossy_failover and elapsed > CHAOS_SECONDS / 3:
            assert isinstance(redis, ClusterRedis)
            lossy_failover = False
            lost_entries = await redis.lossy_failover(streams[0], lambda: _behind(redis, streams[0]))
            tally.kills["master (lossy failover)"] += 1
            continue
        if not lost_redis and elapsed > CHAOS_SECONDS * 2 / 3:
            lost_redis = True
            workers = [name for name in processes if name.startswith("worker")]
            for name in workers:
                processes[name].kill()
            await _behind(redis, streams[-1])
            await redis.lose_data(streams[-1])
            tally.kills["redis (back empty)"] += 1
            for name in workers:
                await asyncio.to_thread(processes[name].start)
            continue
        victim = rng.choice([*processes, "redis", "postgres"])
        tally.kills[victim] += 1
        if victim == "postgres":
            await asyncio.to_thread(postgres.crash)
            await asyncio.sleep(rng.uniform(0.5, 2.0))  # how long the database stays down
            await asyncio.to_thread(postgres.start)
        elif victim == "redis":
            await redis.kill_a_node(rng)
        else:
            processes[victim].kill()
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            await asyncio.to_thread(processes[victim].start)
    return lost_entries


async def _behind(redis: RedisFaults, stream: str) -> None:
    """Wait (up to 10 s) until more events pile up in `stream`: with the workers stopped, unread."""
    async with redis.client() as client:
        before = await client.xlen(stream)

        async def events_waiting() -> bool:
            return await client.xlen(stream) > before + 5

        with contextlib.suppress(TimeoutError):
            await until(events_waiting, seconds=10)


async def unsettled(catalog_db: str, redis: RedisFaults, streams: list[str]) -> list[str]:
    async with redis.client() as client:  # a client per look: Redis restarts under it
        return await pipeline_settled(catalog_db, client, streams)


def _dump_stacks(processes: dict[str, Supervised], tmp_path: Path) -> None:
    """Where each process is, for a failure's post-mortem (py-spy, where installed)."""
    import shutil
    import subprocess

    spy = shutil.which("py-spy")
    for process in processes.values():
        if spy and process.process is not None:
            dump = subprocess.run(
                [spy, "dump", "--pid", str(process.process.pid)], capture_output=True, text=True
            )
            (tmp_path / f"{process.name}.stack").write_text(dump.stdout + dump.stderr)


def system(
    redis: RedisFaults, catalog_db: str, cart_db: str, prefix: str, tmp_path: Path
) -> dict[str, Supervised]:
    """Two of every process, the carts and workers reading the first catalog."""
    mode = {**redis.env(), "REDIS_KEY_PREFIX": prefix, "STREAM_PARTITIONS": str(PARTITIONS[redis.name])}
    catalog_ports = [free_port(), free_port()]
    catalog_env = service_env(catalog_db, redis.url, **mode, **FAST)
    cart_env = service_env(
        cart_db, redis.url, CATALOG_URL=f"http://127.0.0.1:{catalog_ports[0]}", **mode, **FAST
    )

    def two(name: str, module: str, env: dict[str, str], ports: list[int | None]) -> list[Supervised]:
        return [
            Supervised(f"{name}-{i}", module, env, tmp_path / f"{name}-{i}.log", ports[i]) for i in range(2)
        ]

    processes = [
        *two("catalog", "app_product", catalog_env, [*catalog_ports]),
        *two("cart", "app_cart", cart_env, [free_port(), free_port()]),
        *two("relay", "app_product.relay", catalog_env, [None, None]),
        *two("worker", "app_cart.worker", cart_env, [None, None]),
    ]
    return {process.name: process for process in processes}


@pytest.mark.parametrize("mode", ["single", "cluster"])
async def test_the_system_converges_through_kills_crashes_and_a_redis_data_loss(mode: str, tmp_path: Path):
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(10**6)))
    print(f"\nchaos seed: {seed} (CHAOS_SEED={seed} replays it)")
    rng, tally = random.Random(seed), Tally()
    with throwaway_postgres(durable=True) as postgres, redis_of_its_own(mode) as redis:
        catalog_db, cart_db = postgres.url("catalog"), postgres.url("cart")
        await migrate(catalog_db, SQL_ROOT / "catalog")
        await migrate(cart_db, SQL_ROOT / "cart")
        prefix = f"chaos{seed}"
        keys = Keys(prefix, cluster=mode == "cluster", partitions=PARTITIONS[mode])
        streams = [keys.catalog_events(i) for i in range(PARTITIONS[mode])]
        processes = system(redis, catalog_db, cart_db, prefix, tmp_path)
        try:
            for process in processes.values():
                await asyncio.to_thread(process.start)
            catalogs = [processes[f"catalog-{i}"].url for i in range(2)]
            carts = [processes[f"cart-{i}"].url for i in range(2)]
            await seed_catalog(catalogs[0])
            shoppers = await seed_carts(carts[0], rng)
            stop = asyncio.Event()
            load = [
                *(asyncio.create_task(write_forever(url, rng, tally, stop)) for url in catalogs),
                *(asyncio.create_task(read_forever(url, shoppers, tally, stop)) for url in carts),
            ]
            lost_entries = await chaos(rng, processes, postgres, redis, streams, tally)
            stop.set()
            await asyncio.gather(*load)
            # The chaos started again every process it killed: one not running died by itself.
            died = [process.name for process in processes.values() if not process.running]
            for name in died:
                await asyncio.to_thread(processes[name].start)
            settled_at = time.monotonic()

            async def converged() -> bool:
                return not await mismatches(catalog_db, cart_db) and not await unsettled(
                    catalog_db, redis, streams
                )

            try:
                await until(converged, seconds=CONVERGE_SECONDS, poll=0.5)
            except TimeoutError:
                _dump_stacks(processes, tmp_path)
                wrong = await mismatches(catalog_db, cart_db)
                left = await unsettled(catalog_db, redis, streams)
                pytest.fail(f"seed {seed}: not converged: {left}; {len(wrong)} items wrong: {wrong[:5]}")
            converge_seconds = time.monotonic() - settled_at
        finally:
            for process in processes.values():
                process.kill()
    logs = await asyncio.to_thread(lambda: "".join(path.read_text() for path in tmp_path.glob("*.log")))
    repairs = {
        "relay resends": logs.count("Redis lost catalog events"),
        "sweep repairs": logs.count("anti-entropy sweep repaired"),
    }
    print(f"chaos seed {seed} ({mode}): kills {dict(tally.kills)}")
    if isinstance(redis, ClusterRedis):
        print(f"  failovers (s): {[round(seconds, 1) for seconds in redis.failover_seconds]}")
        print(f"  entries the lossy failover lost: {lost_entries}")
    print(f"  writes {dict(tally.writes)}")
    print(f"  reads {dict(tally.reads)}")
    print(f"  {repairs}; converged {converge_seconds:.1f} s after the chaos stopped")
    assert not died, died  # no process died of anything but a kill
    assert "Traceback" not in logs  # and none logged an unexpected error's stack
    assert 500 not in tally.reads and 500 not in tally.writes, (tally.reads, tally.writes)
    assert tally.reads[200] > 0 and tally.writes[200] > 0
    # What Redis lost was resent from the outbox (then applied: converged above).
    assert repairs["relay resends"] > 0
    if mode == "cluster":
        assert lost_entries > 0  # the failover did lose appended events
