"""Every error is problem+json with the request id; bodies over the limit are a 413; no stack
trace reaches a client; request ids are taken or made, and logged with each request."""

import json
import logging
import re

import asyncpg
import httpx
from starlette.requests import Request
from starlette.routing import Route

from shared.http.app import build_app

PROBLEM = "application/problem+json"
MiB = 1024 * 1024


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("tag:storefront,2026:problem:")
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_a_problem(catalog):
    body = assert_problem(await catalog.get("/api/nope"), 404)
    assert "/api/nope" in body["detail"]


async def test_wrong_method_is_a_problem_with_allow(catalog):
    response = await catalog.put("/api/products/1", json={})
    assert_problem(response, 405)
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "PATCH", "DELETE"}


async def test_body_over_a_mebibyte_is_a_413_before_auth(catalog, admin):
    big = json.dumps({"name": "x" * (MiB + 10)}).encode()
    headers = {"Content-Type": "application/json"}
    assert_problem(await catalog.post("/api/categories", content=big, headers=headers), 413)
    assert_problem(await catalog.post("/api/categories", content=big, headers={**headers, **admin}), 413)


async def test_streamed_body_over_the_limit_is_a_413(catalog, admin):
    async def chunks():
        for _ in range(20):
            yield b" " * (128 * 1024)

    response = await catalog.post(
        "/api/categories", content=chunks(), headers={"Content-Type": "application/json", **admin}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


async def test_body_at_the_limit_is_read(catalog, admin):
    body = b" " * (MiB - 20) + b'{"name": 1}'
    response = await catalog.post(
        "/api/categories", content=body, headers={"Content-Type": "application/json", **admin}
    )
    assert_problem(response, 422)  # parsed, then refused for its content: not a 413


async def test_unexpected_error_is_a_bare_500_logged_once(catalog_settings, caplog):
    async def boom(request: Request) -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app = build_app("test", catalog_settings, [Route("/boom", boom)])
    # Raising app exceptions: one that escaped the app would reach the server, which logs its
    # traceback a second time.
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        response = await client.get("/boom", headers={"X-Request-ID": "trace-me-500"})
    body = assert_problem(response, 500)
    assert body["request_id"] == "trace-me-500"
    assert (
        "hunter2" not in response.text
        and "Traceback" not in response.text
        and "RuntimeError" not in response.text
    )
    logged = [r for r in caplog.records if r.exc_info is not None]
    assert [r.name for r in logged] == ["shared.http.problems"]


async def test_a_client_gone_before_its_body_is_read_is_no_error(catalog_settings, caplog):
    async def echo(request: Request) -> None:
        await request.body()
        raise AssertionError("the body of a client that left cannot be read")

    app = build_app("test", catalog_settings, [Route("/echo", echo, methods=["POST"])])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        "client": ("127.0.0.1", 5000),
        "server": ("t", 80),
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    caplog.set_level(logging.INFO)
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert sent == []  # nobody to answer
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert any("left POST /echo" in r.getMessage() for r in caplog.records)
    # Logged and counted as the client's leaving (499), not as an error of ours (500).
    [access] = [r for r in caplog.records if r.name == "storefront.access"]
    assert access.status == 499


async def test_request_id_is_echoed_or_generated(catalog):
    echoed = await catalog.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = await catalog.get(
        "/health", headers={"X-Request-ID": "bad id with spaces\u00e9".encode("latin-1")}
    )
    # A made id is 32 hex digits ("bad" can be three of them: not a check of where it came from).
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert (await catalog.get("/health")).headers["x-request-id"] != made.headers["x-request-id"]


async def test_each_request_is_logged_once_with_its_route(catalog, caplog):
    caplog.set_level(logging.INFO, logger="storefront.access")
    await catalog.get("/api/products/987654321", headers={"X-Request-ID": "log-me"})
    records = [r for r in caplog.records if r.name == "storefront.access"]
    assert len(records) == 1
    record = records[0]
    assert (record.method, record.route, record.status) == ("GET", "/api/products/{id}", 404)
    assert record.duration_ms >= 0


async def test_a_value_the_database_refuses_is_a_400(catalog_settings):
    # The backstop behind validation: a DataError from PostgreSQL is the client's fault.
    async def unstorable(request: Request) -> None:
        raise asyncpg.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00")

    app = build_app("test", catalog_settings, [Route("/unstorable", unstorable)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        body = assert_problem(await client.get("/unstorable"), 400)
    assert "0x00" not in body["detail"]
