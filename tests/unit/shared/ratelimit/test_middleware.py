"""The rate-limit middleware's answers, with a stand-in limiter (no I/O): what reaches the app,
the 429 and 503 problems, and when an outage is logged."""

import json
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.ratelimit import middleware as middleware_module
from shared.ratelimit.limiter import Decision
from shared.ratelimit.middleware import RateLimitMiddleware
from shared.ratelimit.spec import Limit

LIMITS = {"reads": [Limit(10, 60)]}
ADMITTED = Decision(admitted=True, limit=10, remaining=7, reset_seconds=42, retry_after=0, now_us=0)
REFUSED = Decision(admitted=False, limit=10, remaining=0, reset_seconds=42, retry_after=17, now_us=0)


def http_scope(path: str = "/hello") -> dict:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [],
        "query_string": b"",
        "client": ("198.51.100.7", 4000),
    }


class StandIn:
    """Answers each check with the next of `answers` (a Decision, or an exception to raise)."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.checks: list[tuple] = []

    async def check(self, subject, group, limits):
        self.checks.append((subject, group, limits))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


class App:
    """An app that reads the request body through `receive`, as a handler does."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            self.bodies.append(b"<" + scope["type"].encode() + b">")
            return
        message = await receive()
        self.bodies.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})


async def call(middleware: RateLimitMiddleware, scope: dict) -> tuple[int, dict[str, str], bytes]:
    messages = []

    async def receive():
        return {"type": "http.request", "body": b"the body", "more_body": False}

    async def send(message):
        messages.append(message)

    await middleware(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], headers, body


async def test_an_admitted_request_reaches_the_app_with_its_headers():
    app, limiter = App(), StandIn(ADMITTED)
    status, headers, body = await call(RateLimitMiddleware(app, limiter, LIMITS), http_scope())
    assert (status, body, app.bodies) == (200, b"hi", [b"the body"])
    assert headers["ratelimit-limit"] == "10"
    assert headers["ratelimit-remaining"] == "7"
    assert headers["ratelimit-reset"] == "42"
    assert limiter.checks == [("ip:198.51.100.7", "reads", LIMITS["reads"])]


async def test_unlimited_requests_and_other_scopes_pass_untouched():
    app, limiter = App(), StandIn(REFUSED)
    middleware = RateLimitMiddleware(app, limiter, LIMITS)
    status, headers, _ = await call(middleware, http_scope("/health"))
    assert status == 200 and "ratelimit-limit" not in headers
    await middleware({"type": "lifespan"}, None, None)  # never classified: it has no path
    assert app.bodies == [b"the body", b"<lifespan>"]
    assert limiter.checks == []


async def test_a_refused_request_is_a_429_problem():
    app = App()
    status, headers, body = await call(RateLimitMiddleware(app, StandIn(REFUSED), LIMITS), http_scope())
    assert status == 429 and app.bodies == []
    assert headers["retry-after"] == "17"
    assert headers["ratelimit-remaining"] == "0" and headers["ratelimit-reset"] == "42"
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"].endswith(":rate-limited")
    assert problem["title"] == "Too many requests"
    assert problem["detail"] == "Slow down: try again in 17 s."
    assert problem["instance"] == "/hello"


async def test_failing_open_the_request_reaches_the_app():
    app = App()
    middleware = RateLimitMiddleware(app, StandIn(RedisConnectionError("down")), LIMITS)
    status, headers, _ = await call(middleware, http_scope())
    assert (status, app.bodies) == (200, [b"the body"])
    assert "ratelimit-limit" not in headers


async def test_failing_closed_is_a_503_problem():
    app = App()
    middleware = RateLimitMiddleware(app, StandIn(OSError("down")), LIMITS, fail_open=False)
    status, headers, body = await call(middleware, http_scope())
    assert status == 503 and app.bodies == []
    assert headers["retry-after"] == "1"
    problem = json.loads(body)
    assert problem["type"].endswith(":rate-limiter-unavailable")
    assert problem["title"] == "Service unavailable"
    assert problem["detail"] == "Try again shortly."


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize(("again_after", "logged"), [(60.0, 1), (60.5, 2)])
async def test_an_outage_is_logged_first_time_and_then_at_most_once_a_minute(
    monkeypatch, caplog, again_after, logged
):
    clock = Clock()
    monkeypatch.setattr(middleware_module, "time", clock)
    down = RedisConnectionError("down")
    middleware = RateLimitMiddleware(App(), StandIn(down, ADMITTED, down), LIMITS)
    with caplog.at_level(logging.WARNING, logger="shared.ratelimit.middleware"):
        await call(middleware, http_scope())  # the first failure is logged at once
        clock.now += 1
        await call(middleware, http_scope())  # its recovery
        clock.now += again_after - 1
        await call(middleware, http_scope())  # logged only more than a minute after the first
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == logged, errors
    assert errors[0] == "rate limiter cannot reach Redis (down); admitting"
