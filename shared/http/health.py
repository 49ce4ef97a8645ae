"""`GET /health` (liveness, no I/O) and `GET /ready` (dependencies pinged with a short timeout).

`/ready` answers 200 with each dependency's status and latency, or a 503 problem carrying the
same checks when any is down, so a load balancer stops routing to an instance that cannot serve.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.http.json_io import json_response
from shared.http.problems import problem_response

Check = Callable[[], Awaitable[object]]
log = logging.getLogger(__name__)


class CheckResult(msgspec.Struct, omit_defaults=True):
    status: str
    latency_ms: float
    error: str | None = None


async def _run(name: str, check: Check, seconds: float) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            await check()
    except TimeoutError:
        error: str | None = f"no answer within {seconds}s"
    except Exception as exc:  # any failure means "down": reported, not raised
        # The client sees only the exception type; addresses and messages stay in the log, one
        # line without a traceback: a balancer asks every few seconds, and an outage is announced
        # once by the process's Outage, not once per probe.
        log.info("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        error = type(exc).__name__
    else:
        error = None
    latency = round((time.perf_counter() - started) * 1000, 2)
    return CheckResult(status="down" if error else "up", latency_ms=latency, error=error)


def health_routes(
    service: str, checks: Callable[[Request], Mapping[str, Check]], timeout: float
) -> list[Route]:
    """Routes for `service`; `checks(request)` names the dependency pings of the running app."""

    async def health(request: Request) -> Response:
        return json_response({"status": "ok", "service": service})

    async def ready(request: Request) -> Response:
        named = checks(request)
        results = await asyncio.gather(*(_run(name, check, timeout) for name, check in named.items()))
        report = dict(zip(named, results, strict=True))
        down = [name for name, result in report.items() if result.status == "down"]
        if down:
            return problem_response(
                503,
                "not-ready",
                "Not ready",
                f"{service} cannot reach: {', '.join(down)}.",
                instance=request.url.path,
                extensions={"service": service, "checks": report},
            )
        return json_response({"status": "ready", "service": service, "checks": report})

    return [Route("/health", health, methods=["GET"]), Route("/ready", ready, methods=["GET"])]
