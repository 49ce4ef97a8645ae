"""Request body size limit, always answered with a problem+json 413.

A declared Content-Length over the limit is refused before the app runs (even if the endpoint
would never read the body, say because the request fails auth first). A body without a
length (chunked) is counted as the endpoint reads it; past the limit the read raises an
HTTPException(413), which the error handlers format. Requests that announce no body pass
straight through: on the hot path (GETs) the limit costs one header lookup.

This replaces Starlette's RequestBodyLimitMiddleware, which answers the unread-body case in
plain text and wraps every request, body or not.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import problem_response


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must not be negative")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = None, False
        for name, value in scope["headers"]:  # one pass, no dict: this runs on every request
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(scope, receive, send, int(declared))
            return
        if declared is None and not chunked:
            await self.app(scope, receive, send)  # no body announced: nothing to count
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413)
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, declared: int) -> None:
        response = problem_response(
            413,
            "content-too-large",
            "Content too large",
            f"The body is {declared} bytes; this service accepts at most {self.max_body_bytes}.",
            instance=scope["path"],
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
