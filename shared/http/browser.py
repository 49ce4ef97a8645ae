"""What a browser on another origin needs from a service: CORS, and compressed bodies.

- CORS (Starlette's middleware): origins in CORS_ALLOW_ORIGINS only (empty: no cross-origin
  access at all), the methods and headers the API uses, the headers a frontend reads exposed,
  and preflights cached by the browser for CORS_MAX_AGE seconds. It sits outside the rate
  limiter and every route, so a preflight is answered before any authentication and is never
  counted as a request. An origin not on the list gets no CORS header at all; its preflight
  is a 403 problem.
- gzip (Starlette's middleware) for bodies of GZIP_MIN_BYTES or more when the client accepts
  it; HTTP_GZIP=false leaves compression to a proxy in front.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from shared.config import Settings
from shared.http.problems import problem_response

METHODS = ("GET", "POST", "PATCH", "DELETE")
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "X-Request-ID",
)
EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Request-ID",
    "Idempotent-Replayed",
)
# Under about this, gzip's header and the CPU cost outweigh what it saves.
GZIP_MIN_BYTES = 1000
# Level 1 (nginx's default), not Starlette's 9. Compressing a 32 KB body of 100 products alone
# (gzip.compress in a loop), 9 took 535 us for 1,694 bytes, 1 took 108 us for 1,970: a fifth
# of the CPU for 0.9% more of the original size on the wire. Served end to end
# (scripts/bench_catalog --parts gzip, README): level 9 cost 1.45 of the CPU per request of an
# uncompressed answer, level 1 1.05.
GZIP_LEVEL = 1


class _Cors(CORSMiddleware):
    """Starlette's CORS, silent towards origins not on the list: no CORS header at all (its
    own would still list the allowed methods and exposed headers)."""

    async def simple_response(
        self, scope: Scope, receive: Receive, send: Send, request_headers: Headers
    ) -> None:
        origin = request_headers.get("origin")
        if origin is None or not self.is_allowed_origin(origin=origin):
            await self.app(scope, receive, self._varying(send) if self.allow_origins else send)
            return
        await super().simple_response(scope, receive, send, request_headers)

    @staticmethod
    def _varying(send: Send) -> Send:
        # The answer differs by Origin (an allowed one gets CORS headers): a shared cache must
        # not serve this one, kept for another origin, to an allowed one.
        async def with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).add_vary_header("Origin")
            await send(message)

        return with_vary

    def preflight_response(self, request_headers: Headers) -> Response:
        if not self.is_allowed_origin(origin=request_headers["origin"]):
            return problem_response(
                403,
                "cors-origin-refused",
                "Origin not allowed",
                "This origin may not call the API from a browser (see CORS_ALLOW_ORIGINS).",
            )
        return super().preflight_response(request_headers)


def browser_middleware(settings: Settings) -> list[Middleware]:
    origins = [origin.strip() for origin in settings.cors_allow_origins.split(",") if origin.strip()]
    middleware = [
        Middleware(
            _Cors,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=settings.cors_max_age,
        )
    ]
    if settings.http_gzip:
        # No content types excluded: the services answer only JSON and text, all worth it, and
        # Starlette re-reads its list of excluded types on every request (3 us of each).
        options = {"minimum_size": GZIP_MIN_BYTES, "compresslevel": GZIP_LEVEL}
        middleware.append(Middleware(GZipMiddleware, **options, exclude_content_types=()))
    return middleware
