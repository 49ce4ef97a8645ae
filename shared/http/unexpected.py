"""The last stop for an exception no handler took: one 500 problem, one traceback in the log.

Starlette's ServerErrorMiddleware answers such an exception and then re-raises it for the
server, which logs its traceback again: every unexpected error was logged twice. This
middleware, inside the request context (so the 500 carries the request id), answers it and
swallows it instead. If the response had already started, nothing can be sent: the traceback
is logged and the connection ends. A client that went away before its body was read
(`ClientDisconnect`) is nobody's error: nothing was done, nobody waits for an answer; it is
logged at info level.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import log, unexpected_response


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except ClientDisconnect:
            log.info("the client left %s %s before its request was read", scope["method"], scope["path"])
        except Exception as exc:
            if started:
                log.error("unhandled error on %s after the response started", scope["path"], exc_info=exc)
                return
            await unexpected_response(scope["path"], exc)(scope, receive, send)
