"""A real Prometheus (Debian's binary) scraping every process of the system: catalog and cart with
the metrics token, the relay and a worker on their listeners. The pipeline's metrics are there;
stopping the worker while events pile up moves them, and the matching alert goes pending."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from devtools.servers import free_port
from shared.storage.migrations import SQL_ROOT, migrate
from tests.support.env import make_token, service_env
from tests.support.processes import wait_until
from tests.support.supervisor import Supervised

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# From each kind of process: the stream's (cart, worker), the outbox's (relay), the worker's own,
# the services' requests, the breaker's state (cart).
EXPECTED = (
    "storefront_stream_group_lag",
    "storefront_stream_group_messages_pending",
    "storefront_outbox_unsent_rows",
    "storefront_relay_active",
    "storefront_worker_heartbeat_age_seconds",
    "storefront_http_requests_total",
    "storefront_breaker_state",
)
ADMIN = {"Authorization": f"Bearer {make_token('admin-prom', roles=('admin',))}"}


def prometheus_config(tmp_path: Path, targets: dict[str, str], token: str) -> Path:
    (tmp_path / "token").write_text(token)
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [{"targets": [target]}],
                **(
                    {"authorization": {"credentials_file": str(tmp_path / "token")}}
                    if job in ("catalog", "cart")
                    else {}
                ),
            }
            for job, target in targets.items()
        ],
    }
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def alert_state(self, name: str) -> str | None:
        alerts = httpx.get(f"{self.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return next((a["state"] for a in alerts if a["labels"]["alertname"] == name), None)


def test_prometheus_scrapes_every_process_and_a_stopped_worker_raises_an_alert(
    postgres, redis_server, tmp_path
):
    binary = shutil.which("prometheus")
    assert binary, "prometheus is installed by scripts/install (Debian's package)"
    catalog_db, cart_db = (postgres.url(f"prom_{uuid.uuid4().hex[:8]}") for _ in range(2))
    asyncio.run(migrate(catalog_db, SQL_ROOT / "catalog"))
    asyncio.run(migrate(cart_db, SQL_ROOT / "cart"))
    prefix = f"prom{uuid.uuid4().hex[:6]}"
    ports = {name: free_port() for name in ("catalog", "cart", "relay", "worker", "prometheus")}
    catalog_env = service_env(catalog_db, redis_server.url, REDIS_KEY_PREFIX=prefix, RELAY_POLL_SECONDS="0.2")
    cart_env = service_env(
        cart_db, redis_server.url, REDIS_KEY_PREFIX=prefix, CATALOG_URL=f"http://127.0.0.1:{ports['catalog']}"
    )
    processes = [
        Supervised("catalog", "app_product", catalog_env, tmp_path / "catalog.log", ports["catalog"]),
        Supervised("cart", "app_cart", cart_env, tmp_path / "cart.log", ports["cart"]),
        Supervised(
            "relay",
            "app_product.relay",
            {**catalog_env, "METRICS_PORT": str(ports["relay"])},
            tmp_path / "relay.log",
        ),
        Supervised(
            "worker",
            "app_cart.worker",
            {**cart_env, "METRICS_PORT": str(ports["worker"])},
            tmp_path / "worker.log",
        ),
    ]
    targets = {name: f"127.0.0.1:{ports[name]}" for name in ("catalog", "cart", "relay", "worker")}
    config = prometheus_config(tmp_path, targets, make_token("prometheus", roles=("metrics",), ttl=3600))
    prometheus = None
    try:
        for process in processes:
            process.start()
        with (tmp_path / "prometheus.log").open("w") as log:  # the child keeps its own copy
            prometheus = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                 f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
                stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        prom = Prometheus(f"http://127.0.0.1:{ports['prometheus']}")

        def ready() -> bool:
            try:
                return httpx.get(f"{prom.url}/-/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False  # Prometheus is starting

        wait_until(ready, timeout=30)
        wait_until(lambda: prom.value("sum(up)") == 4, timeout=30)
        for metric in EXPECTED:
            wait_until(lambda m=metric: prom.query(m) != [], timeout=15)
        wait_until(lambda: prom.value("max(storefront_stream_live_workers)") == 1, timeout=15)

        processes[3].stop()  # the worker leaves (SIGTERM): its heartbeat goes with it
        with httpx.Client(base_url=processes[0].url, timeout=5) as catalog:
            for n in range(5):
                body = {"sku": f"PROM-{n}-{uuid.uuid4().hex[:4]}", "name": "Watched", "price": "1.00"}
                assert catalog.post("/api/products", json=body, headers=ADMIN).status_code == 201
        wait_until(lambda: (prom.value('max(storefront_stream_group_lag{job="cart"})') or 0) >= 5, timeout=30)
        wait_until(lambda: prom.value("max(storefront_stream_live_workers)") == 0, timeout=30)
        wait_until(lambda: prom.alert_state("NoLiveWorker") == "pending", timeout=30)
        assert prom.value("max(storefront_outbox_unsent_rows)") == 0  # the relay sent them all
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=15)
        for process in processes:
            process.kill()
