"""Per-request context: the request id (taken from `X-Request-ID` or generated), the access log,
and the headers every answer carries.

`RequestContextMiddleware` is the outermost user middleware of every app. It sets the request
id in a context variable (read by the log formatter and the error handlers), echoes it in the
response, writes one JSON log line per request with method, route template, status and
duration, and counts and times the request in the service's metrics. Every answer carries
`X-Content-Type-Options: nosniff`; a personal one (the request carried credentials, or its path
is one of the service's private ones) carries `Cache-Control: no-store`.
"""

from __future__ import annotations

import logging
import os
import re
import time
from contextvars import ContextVar

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.telemetry.metrics import ServiceMetrics

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# A caller's id is echoed into logs and headers, so only a short, plain token is accepted.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")

access_log = logging.getLogger("storefront.access")
# The response headers this middleware sets, lower-cased as ASGI's raw headers are.
_HEADERS = frozenset({b"x-request-id", b"x-content-type-options"})
_PRIVATE_HEADERS = _HEADERS | {b"cache-control"}
CLIENT_CLOSED_REQUEST = 499


def current_request_id() -> str | None:
    """The id of the request being handled by this task, if any."""
    return _request_id.get()


def route_template(scope: Scope) -> str:
    # "/api/products/{id}" rather than the raw path keeps logs' and metrics' cardinality
    # bounded. Starlette's router leaves the route it matched in the scope; a request refused
    # before routing (429, 413) is matched here, so it is counted against its route too.
    route = scope.get("route")
    if route is None:
        route = next((r for r in getattr(scope.get("app"), "routes", ()) if _matches(r, scope)), None)
    return "<unmatched>" if route is None else str(getattr(route, "path_format", "<unmatched>"))


def _matches(route: BaseRoute, scope: Scope) -> bool:
    try:
        return route.matches(scope)[0] == Match.FULL
    except Exception:  # a path a converter rejects must not cost the log line
        return False


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: ServiceMetrics | None = None, private_paths: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.private_paths = private_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming, credentials = "", False
        for name, value in scope["headers"]:  # one pass, no dict: this runs on every request
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"authorization":
                credentials = True
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else os.urandom(16).hex()
        # Not reset afterwards on purpose: Starlette's outermost error handler runs after this
        # middleware has unwound and must still see the id. Each request runs in its own task
        # (its own context copy), so the value cannot leak into another request.
        _request_id.set(request_id)
        status = 0  # until the response starts
        started = time.perf_counter()
        # A personal answer (credentials sent, or a path of the service's private ones) must not
        # be kept by a shared cache or a browser's back-forward cache.
        private = credentials or scope["path"].startswith(self.private_paths)
        ours = [(b"x-request-id", request_id.encode()), (b"x-content-type-options", b"nosniff")]
        if private:
            ours.append((b"cache-control", b"no-store"))
        replaced = _PRIVATE_HEADERS if private else _HEADERS

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Ours replace any a route set (a new list: it may be the response's own).
                kept = [header for header in message.get("headers", ()) if header[0] not in replaced]
                message["headers"] = kept + ours
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            status = status or 500  # answered by Starlette's outermost handler
            raise
        finally:
            # No answer, and nothing raised: the client left before one (nginx's 499), which
            # is no error of ours, and must not count as one in the metrics or alerts.
            status = status or CLIENT_CLOSED_REQUEST
            seconds, route = time.perf_counter() - started, route_template(scope)
            if self.metrics is not None:
                self.metrics.observe_request(scope["method"], route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    },
                )
