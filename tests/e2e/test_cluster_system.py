"""The system on a Redis Cluster with two of everything: two catalogs and two carts, each pair
behind a round-robin balancer, two relays and two workers, the event stream in three partitions.
The README's flow runs as written through the balancers, so its requests (an idempotent retry
and a stale-version write among them) land on both instances; then price changes reach every
cart: the snapshots in PostgreSQL through each of the three partitions, and both cart instances
serve the new prices."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient

from devtools.redis_cluster import RedisCluster
from devtools.servers import free_port
from shared.keys import CART_GROUP, Keys
from tests.support.chaos_load import ADMIN, FAST
from tests.support.env import as_user, service_env
from tests.support.processes import prepare
from tests.support.readme_examples import check_readme_output, run_readme_examples
from tests.support.round_robin import round_robin
from tests.support.supervisor import Supervised
from tests.support.waits import until

pytestmark = [pytest.mark.e2e, pytest.mark.own_redis]  # the cluster, by name

PARTITIONS = 3
NEW_PRICES = {1: "11.11", 2: "22.22", 3: "33.33"}  # ids 1, 2, 3: partitions 1, 2 and 0


async def snapshot_prices(cart_db: str) -> dict[int, set[str]]:
    conn = await asyncpg.connect(cart_db)
    try:
        rows = await conn.fetch(
            "SELECT product_id, current_price::text AS price FROM cart_items WHERE product_id = ANY($1)",
            list(NEW_PRICES),
        )
    finally:
        await conn.close()
    prices: dict[int, set[str]] = {}
    for row in rows:
        prices.setdefault(row["product_id"], set()).add(row["price"])
    return prices


async def test_the_readme_flow_and_price_changes_with_two_of_everything_on_a_cluster(
    postgres, redis_cluster: RedisCluster, tmp_path: Path
):
    nodes = ",".join(f"127.0.0.1:{port}" for port in redis_cluster.ports)
    prefix = f"sys{uuid.uuid4().hex[:8]}"
    mode = {
        "REDIS_CLUSTER": "true",
        "REDIS_CLUSTER_NODES": nodes,
        "STREAM_PARTITIONS": str(PARTITIONS),
        "REDIS_KEY_PREFIX": prefix,
    }
    catalog_db, cart_db = (postgres.url(f"sys_{uuid.uuid4().hex[:8]}") for _ in range(2))
    demo = ["app_product.tools.demo"]
    await asyncio.to_thread(prepare, catalog_db, redis_cluster.url, "catalog", demo, **mode)
    await asyncio.to_thread(prepare, cart_db, redis_cluster.url, "cart", **mode)
    catalog_ports, cart_ports = [free_port(), free_port()], [free_port(), free_port()]
    async with round_robin(catalog_ports) as catalogs, round_robin(cart_ports) as carts:
        catalog_env = service_env(catalog_db, redis_cluster.url, **mode, **FAST)
        cart_env = service_env(cart_db, redis_cluster.url, CATALOG_URL=catalogs.url, **mode, **FAST)
        processes = [
            *(Supervised(f"catalog-{i}", "app_product", catalog_env, tmp_path / f"catalog-{i}.log", port)
              for i, port in enumerate(catalog_ports)),
            *(Supervised(f"cart-{i}", "app_cart", cart_env, tmp_path / f"cart-{i}.log", port)
              for i, port in enumerate(cart_ports)),
            *(Supervised(f"relay-{i}", "app_product.relay", catalog_env, tmp_path / f"relay-{i}.log")
              for i in range(2)),
            *(Supervised(f"worker-{i}", "app_cart.worker", cart_env, tmp_path / f"worker-{i}.log")
              for i in range(2)),
        ]  # fmt: skip
        try:
            for process in processes:
                await asyncio.to_thread(process.start)
            check_readme_output(await run_readme_examples(catalogs.url, carts.url))
            assert all(catalogs.connections[port] > 1 for port in catalog_ports), catalogs.connections
            assert all(carts.connections[port] > 1 for port in cart_ports), carts.connections

            alice = as_user("alice")  # the README's shopper, whose cart holds products 1, 2 and 3
            async with httpx.AsyncClient(base_url=catalogs.url, timeout=10) as catalog:
                for product_id, price in NEW_PRICES.items():
                    current = await catalog.get(f"/api/products/{product_id}")
                    headers = {**ADMIN, "If-Match": current.headers["etag"]}
                    body = {"price": price}
                    changed = await catalog.patch(f"/api/products/{product_id}", json=body, headers=headers)
                    assert changed.status_code == 200, changed.text

            async def snapshots_repriced() -> bool:
                return await snapshot_prices(cart_db) == {pid: {price} for pid, price in NEW_PRICES.items()}

            await until(snapshots_repriced, seconds=30)  # through the stream: every partition
            for port in cart_ports:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as cart:
                    items = (await cart.get("/api/cart", headers=alice)).json()["items"]
                assert {item["product_id"]: item["unit_price"] for item in items} == NEW_PRICES
            keys = Keys(prefix, cluster=True, partitions=PARTITIONS)
            async with ClusterClient.from_url(redis_cluster.url) as redis:
                for partition in range(PARTITIONS):
                    stream = keys.catalog_events(partition)
                    assert await redis.xlen(stream) > 0, stream
                    assert (await redis.xpending(stream, CART_GROUP))["pending"] == 0, stream
        finally:
            for process in processes:
                process.kill()
    logs = await asyncio.to_thread(lambda: "".join(path.read_text() for path in tmp_path.glob("*.log")))
    assert "Traceback" not in logs
