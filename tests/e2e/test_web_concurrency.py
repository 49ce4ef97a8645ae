"""WEB_CONCURRENCY: a service as several worker processes on one port, with one /metrics view of
them all whichever process answers the scrape."""

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from devtools.servers import free_port
from tests.support.env import make_token, service_env
from tests.support.processes import answers, new_prefix, wait_until

METRICS = {"Authorization": f"Bearer {make_token('scraper', roles=('metrics',))}"}
REQUESTS = 300


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def counted(exposition: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    total = 0.0
    for line in exposition.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{key}="{value}"' in (match.group(1) or "") for key, value in labels.items()):
            total += float(match.group(2))
    return total


async def browse(base: str) -> None:
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base, limits=limits) as client:
        answers_ = await asyncio.gather(*(client.get("/api/categories") for _ in range(REQUESTS)))
    assert {answer.status_code for answer in answers_} == {200}


def test_two_workers_share_a_port_and_one_metrics_view(catalog_db_url, redis_server):
    port = free_port()
    env = service_env(catalog_db_url, redis_server.url, REDIS_KEY_PREFIX=new_prefix(), WEB_CONCURRENCY="2")
    parent = subprocess.Popen(
        [sys.executable, "-m", "app_product"],
        env={**os.environ, **env, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its workers are stopped with it, whatever happens here
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{base}/health") and len(children(parent.pid)) >= 2)
        workers = [
            pid
            for pid in children(parent.pid)
            if "app_product" in Path(f"/proc/{pid}/cmdline").read_text() or True
        ]
        before = {pid: cpu_ticks(pid) for pid in workers}
        asyncio.run(browse(base))

        def every_scrape_counts_all() -> bool:
            scrapes = [httpx.get(f"{base}/metrics", headers=METRICS).text for _ in range(4)]
            return all(
                counted(text, "storefront_http_requests_total", route="/api/categories", status="200")
                == REQUESTS
                and counted(text, "storefront_rate_limit_decisions_total", outcome="admitted") >= REQUESTS
                # a gauge is summed over the live processes: each may open DATABASE_POOL_MAX
                and counted(text, "storefront_db_pool_max_connections", pool="main") == 2 * 10
                for text in scrapes
            )

        wait_until(every_scrape_counts_all, timeout=15)
        busy = [pid for pid in workers if cpu_ticks(pid) > before[pid]]
        assert len(busy) >= 2, "one worker served everything"
    finally:
        os.killpg(parent.pid, signal.SIGTERM)
        parent.wait(timeout=30)
    wait_until(lambda: not children(parent.pid), timeout=15)
