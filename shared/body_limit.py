"""Request body size limit that always answers with a problem+json 413.

Starlette's `RequestBodyLimitMiddleware` (installed just inside this guard) counts streamed and
chunked bodies as the endpoint reads them and raises an HTTPException our handler formats. But
when a body with a too-large Content-Length is never read (say the request fails auth first),
it replaces the response with a plain-text 413. This guard answers such requests before the
app runs, so every 413 has the same shape.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import problem_response


class ContentLengthLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must not be negative")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = dict(scope["headers"]).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                response = problem_response(
                    413,
                    "content-too-large",
                    "Content too large",
                    f"The body is {int(declared)} bytes; this service accepts at most {self.max_body_bytes}.",
                    instance=scope["path"],
                    headers={"Connection": "close"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
