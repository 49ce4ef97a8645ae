"""The catalog as it runs in production: `python -m app_product`, a real process on a real port."""

import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.support.env import make_token

pytestmark = pytest.mark.e2e


def test_serves_the_catalog_over_http(catalog_process, unique):
    base, _ = catalog_process
    admin = {"Authorization": f"Bearer {make_token('admin-1', roles=('admin',))}"}
    with httpx.Client(base_url=base, timeout=5) as client:
        category = client.post("/api/categories", json={"name": unique("E2E")}, headers=admin)
        assert category.status_code == 201
        product = client.post(
            "/api/products",
            json={
                "sku": unique("E2E"),
                "name": "Over the wire",
                "price": "5.50",
                "category_id": category.json()["id"],
            },
            headers=admin,
        )
        assert product.status_code == 201
        fetched = client.get(f"/api/products/{product.json()['id']}", headers={"X-Request-ID": "e2e-1"})
        assert fetched.json()["price"] == "5.50"
        assert fetched.headers["x-request-id"] == "e2e-1"
        assert "server" not in fetched.headers
        missing = client.get("/api/products/987654321")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert client.get("/ready").json()["status"] == "ready"


def test_logs_one_json_line_per_request_and_stops_on_sigterm(catalog_process):
    base, process = catalog_process
    httpx.get(f"{base}/api/products/1", headers={"X-Request-ID": "log-line-1"}, timeout=5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status says why.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in stderr
    access = [line for line in stderr.splitlines() if '"logger":"storefront.access"' in line]
    matching = [line for line in access if '"request_id":"log-line-1"' in line]
    assert len(matching) == 1
    assert '"route":"/api/products/{id}"' in matching[0] and '"method":"GET"' in matching[0]


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"ENV": "production", "DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x"}, "JWT_SECRET"),
        ({"ENV": "production", "JWT_SECRET": "s" * 40}, "DATABASE_URL"),
        ({"ENV": "development", "JWT_ALGORITHM": "RS256"}, "JWT_PUBLIC_KEY_FILE"),
        ({}, "DATABASE_URL"),  # ENV defaults to production
    ],
)
def test_bad_settings_stop_the_process_with_one_line(environ, variable):
    env = {
        key: value for key, value in os.environ.items() if key not in {"ENV", "JWT_SECRET", "DATABASE_URL"}
    }
    result = subprocess.run(
        [sys.executable, "-m", "app_product"],
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"catalog: configuration error: {variable}: ")


def test_an_idle_connection_is_kept_as_long_as_configured(catalog_db_url, redis_server, monkeypatch):
    """HTTP_KEEP_ALIVE_SECONDS reaches the server: with 1 s, an idle connection is closed by the
    service soon after; by default (75 s) it is still open past uvicorn's own default (5 s) and
    serves a second request."""
    import socket
    import time
    from urllib.parse import urlsplit

    from tests.support.processes import new_prefix, running_catalog

    request = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"

    def closed_within(base: str, seconds: float) -> bool:
        address = urlsplit(base)
        with socket.create_connection((address.hostname, address.port), timeout=seconds) as sock:
            sock.sendall(request)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            deadline = time.monotonic() + seconds
            try:
                while time.monotonic() < deadline:
                    sock.settimeout(max(deadline - time.monotonic(), 0.01))
                    if sock.recv(4096) == b"":
                        return True  # the service closed it
            except TimeoutError:
                pass
            sock.sendall(request)  # still open: it must still serve
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            return False

    monkeypatch.setenv("HTTP_KEEP_ALIVE_SECONDS", "1")
    with running_catalog(catalog_db_url, redis_server.url, prefix=new_prefix()) as (base, _):
        assert closed_within(base, 5)
    monkeypatch.delenv("HTTP_KEEP_ALIVE_SECONDS")
    with running_catalog(catalog_db_url, redis_server.url, prefix=new_prefix()) as (base, _):
        assert not closed_within(base, 6)
