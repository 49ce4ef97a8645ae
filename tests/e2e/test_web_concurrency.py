"""WEB_CONCURRENCY: a service as several worker processes on one port, with one /metrics view of
them all whichever process answers the scrape."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from devtools.servers import free_port
from tests.support.env import make_token, service_env
from tests.support.processes import answers, new_prefix, wait_until

METRICS = {"Authorization": f"Bearer {make_token('scraper', roles=('metrics',))}"}
REQUESTS = 300


def workers_of(pid: int) -> list[int]:
    """uvicorn's worker processes: spawned children (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def requests_served(worker: int, route: str) -> float:
    """What `worker` counted of `route`, from its own file of the shared metrics."""
    environ = dict(
        item.split("=", 1) for item in Path(f"/proc/{worker}/environ").read_text().split("\0") if "=" in item
    )
    path = Path(environ["PROMETHEUS_MULTIPROC_DIR"]) / f"counter_{worker}.db"
    total = 0.0
    for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
        _, sample, labels, _ = json.loads(key)
        if sample == "storefront_http_requests_total" and labels.get("route") == route:
            total += value
    return total


def counted(exposition: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def browse(base: str) -> None:
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        answered = await asyncio.gather(*(client.get("/api/categories") for _ in range(REQUESTS)))
    assert {answer.status_code for answer in answered} == {200}


def test_two_workers_share_a_port_and_one_metrics_view(catalog_db_url, redis_server, tmp_path):
    port, log = free_port(), tmp_path / "catalog.log"  # a file: a pipe nobody reads would fill
    env = service_env(catalog_db_url, redis_server.url, REDIS_KEY_PREFIX=new_prefix(), WEB_CONCURRENCY="2")
    with log.open("w") as stderr:
        parent = subprocess.Popen(
            [sys.executable, "-m", "app_product"],
            env={**os.environ, **env, "PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its workers are stopped with it, whatever happens here
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{base}/health") and len(workers_of(parent.pid)) == 2)
        # A worker that has not finished starting accepts nothing yet, so the first burst may all
        # go to the other: burst until both have served (the kernel hands connections to
        # whichever worker accepts first).
        served: list[float] = []
        bursts = 0

        def both_served() -> bool:
            nonlocal served, bursts
            asyncio.run(browse(base))
            bursts += 1
            served = [requests_served(worker, "/api/categories") for worker in workers_of(parent.pid)]
            return len(served) == 2 and min(served) > 0

        wait_until(both_served, timeout=30)
        total = REQUESTS * bursts
        assert sum(served) == total, served  # each request served once, by one of them

        def every_scrape_counts_all() -> bool:
            scrapes = [httpx.get(f"{base}/metrics", headers=METRICS).text for _ in range(4)]
            return all(
                counted(text, "storefront_http_requests_total", route="/api/categories", status="200")
                == total
                and counted(text, "storefront_rate_limit_decisions_total", outcome="admitted") >= total
                # a gauge is summed over the live processes: each may open DATABASE_POOL_MAX
                and counted(text, "storefront_db_pool_max_connections", pool="main") == 2 * 10
                for text in scrapes
            )

        wait_until(every_scrape_counts_all, timeout=15)
    finally:
        os.killpg(parent.pid, signal.SIGTERM)
        parent.wait(timeout=30)
    assert parent.returncode == 0
    assert not workers_of(parent.pid)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(line["logger"] == "storefront.access" for line in lines) >= total
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]  # ours only


def test_a_bad_setting_stops_the_service_with_one_line_not_each_worker(
    catalog_db_url, redis_server, tmp_path
):
    (tmp_path / "key.pem").write_text("not a key")
    env = service_env(
        catalog_db_url,
        redis_server.url,
        WEB_CONCURRENCY="2",
        JWT_ALGORITHM="RS256",
        JWT_PUBLIC_KEY_FILE=str(tmp_path / "key.pem"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "app_product"],
        env={**os.environ, **env, "PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip().splitlines()[-1].startswith("catalog: configuration error: JWT_PUBLIC_KEY_FILE")
    )
