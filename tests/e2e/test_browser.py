"""A real browser against the real services: headless Chromium (Debian's, driven by Playwright;
no browser download) loads a shop page from a second local origin and calls both services with
`fetch`, as a frontend does. The page and what it does are in browser/shop.html.

The same page from an origin not on CORS_ALLOW_ORIGINS must be refused by the browser itself.
Each run leaves a screenshot of both pages in .artefacts/browser/.
"""

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.env import make_token
from tests.support.processes import new_prefix, prepare, running_cart, running_catalog

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
PAGE = Path(__file__).parent / "browser"
ARTEFACTS = Path(__file__).parents[2] / ".artefacts" / "browser"
DEADLINE_MS = 20_000


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving_page() -> Iterator[str]:
    """browser/ on a free loopback port: an origin of its own."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(PAGE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def visit(browser: Any, origin: str, screenshot: str, **query: str) -> dict[str, Any]:
    """Open the shop page at `origin`, wait for it to finish, screenshot it; what it read, and
    (under "console") what the browser said in its console."""
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        page.goto(f"{origin}/shop.html?{urlencode(query)}")
        page.wait_for_function("window.results !== undefined", timeout=DEADLINE_MS)
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / screenshot), full_page=True)
        results: dict[str, Any] = page.evaluate("window.results")
        return {**results, "console": console}
    finally:
        page.close()


def test_a_page_on_a_listed_origin_shops_and_an_unlisted_one_is_blocked(
    postgres, redis_server, monkeypatch, browser
):
    catalog_db, cart_db = postgres.url("browser_catalog"), postgres.url("browser_cart")
    prepare(catalog_db, redis_server.url, "catalog", ["app_product.tools.demo"])
    prepare(cart_db, redis_server.url, "cart")
    with serving_page() as shop_origin, serving_page() as stranger_origin:
        monkeypatch.setenv("CORS_ALLOW_ORIGINS", shop_origin)
        prefix = new_prefix()
        with (
            running_catalog(catalog_db, redis_server.url, prefix=prefix) as (catalog, _),
            # Small enough for the page to reach; the preflights before the writes must not count.
            running_cart(cart_db, redis_server.url, catalog, prefix=prefix, RATE_LIMIT_WRITES="4/60") as (
                cart,
                _,
            ),
        ):
            services = {"catalog": catalog, "cart": cart, "token": make_token("browser-shopper")}
            shop = visit(browser, shop_origin, "listed-origin.png", **services)
            stranger = visit(browser, stranger_origin, "unlisted-origin.png", mode="blocked", **services)
            # What the browser was told: a refused preflight, and a read without CORS headers.
            preflight = httpx.options(
                f"{cart}/api/cart/items",
                headers={
                    "Origin": stranger_origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
            read = httpx.get(f"{catalog}/api/products?limit=1", headers={"Origin": stranger_origin})

    assert "error" not in shop, shop
    assert shop["listing"]["status"] == 200 and shop["listing"]["count"] > 0
    assert shop["listing"]["X-Request-ID"]
    assert shop["product"]["status"] == 200 and shop["product"]["ETag"].startswith(('"', 'W/"'))
    assert shop["revalidated"]["status"] == 304

    added, replayed, limited = shop["added"], shop["replayed"], shop["limited"]
    assert added["status"] == 200, added
    assert [item["product_id"] for item in added["body"]["items"]] == [shop["product"]["id"]]
    assert added["X-Request-ID"] and added["RateLimit-Remaining"] == "3"
    # A replay is answered from the first answer, and counted like any request.
    assert replayed["status"] == 200 and replayed["Idempotent-Replayed"] == "true"
    assert replayed["body"] == added["body"] and replayed["RateLimit-Remaining"] == "2"
    # Two more writes are allowed (4 in all): the fifth is refused, with a wait it can read.
    assert limited["status"] == 429 and int(limited["Retry-After"]) > 0, limited
    assert limited["body"]["status"] == 429 and limited["RateLimit-Remaining"] == "0"

    # Blocked by the browser for CORS (not a service that is down: the same requests, sent
    # without a browser, were answered, with nothing that lets that origin read them).
    for name in ("catalog listing", "cart write"):
        assert stranger[name]["blocked"].startswith("TypeError"), stranger
    assert sum("CORS policy" in line for line in stranger["console"]) == 2, stranger["console"]
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
