"""The Starlette skeleton every storefront service shares, and the process entry point.

`build_app` wires one place: the PostgreSQL and Redis pools (opened in the lifespan, never at
import), the token verifier, the middleware order, the problem+json handlers, the health
routes and `/metrics`. `serve` loads settings (one line and exit 2 on a bad value), configures JSON logging
and runs uvicorn.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from shared.config import S, Settings, exit_on_settings_error, load_settings
from shared.errors import DomainError
from shared.http.auth import TokenVerifier, require_role
from shared.http.body_limit import BodyLimitMiddleware
from shared.http.browser import browser_middleware
from shared.http.health import Check, health_routes
from shared.http.openapi import openapi_route
from shared.http.problems import ProblemType, exception_handlers
from shared.http.request_context import RequestContextMiddleware, route_template
from shared.http.unexpected import UnexpectedErrorMiddleware
from shared.keys import keys_for
from shared.logs import configure_logging
from shared.outage import Outage
from shared.ratelimit.groups import RATE_LIMIT_GROUPS, Classifier, default_groups
from shared.ratelimit.limiter import RateLimiter
from shared.ratelimit.middleware import RateLimitMiddleware
from shared.ratelimit.spec import parse_limits, parse_networks
from shared.storage.postgres import ReadPool, connect, create_database, expire_connections, ping
from shared.storage.redis_conn import check_mode, create_redis
from shared.telemetry import multiprocess, tracing
from shared.telemetry.metrics import ServiceMetrics
from shared.telemetry.pools import expose_pools
from shared.telemetry.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger(__name__)

# Reading /metrics needs this role: a scraper's token should not also be able to post events
# (the `service` role's power).
METRICS_ROLE = "metrics"


async def _metrics(request: Request) -> Response:
    require_role(request, METRICS_ROLE)
    metrics: ServiceMetrics = request.app.state.metrics
    return Response(await metrics.render(), media_type=metrics.content_type)


def _dependency_checks(request: Request) -> dict[str, Check]:
    state = request.app.state
    return {"postgres": lambda: ping(state.db), "redis": lambda: state.redis.ping(), **state.ready_checks}


def _expose_rate_limiter(metrics: ServiceMetrics, limiter: RateLimiter) -> None:
    decisions = "Requests the rate limiter decided on, by outcome."
    metrics.expose("storefront_rate_limit_decisions", decisions, lambda: limiter.admitted, outcome="admitted")
    metrics.expose("storefront_rate_limit_decisions", decisions, lambda: limiter.refused, outcome="refused")
    metrics.expose(
        "storefront_rate_limit_redis_failures",
        "Requests the rate limiter could not decide (Redis unreachable): admitted or refused "
        "as RATE_LIMIT_FAIL_OPEN says.",
        lambda: limiter.redis_failures,
    )


def _tracing_middleware() -> list[Middleware]:
    """OpenTelemetry's ASGI middleware, outermost, when tracing is on: it continues the caller's
    trace (`traceparent`) and names each server span by route template."""
    if not tracing.enabled():
        return []
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    def span_details(scope: Scope) -> tuple[str, dict[str, str]]:
        route = route_template(scope)
        return f"{scope.get('method', 'HTTP')} {route}", {"http.route": route}

    return [
        Middleware(
            OpenTelemetryMiddleware,
            default_span_details=span_details,
            excluded_urls="/health,/ready,/metrics",
        )
    ]


ServiceLifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def build_app(
    service: str,
    settings: Settings,
    routes: Sequence[BaseRoute],
    lifespan: ServiceLifespan | None = None,
    rate_limit_groups: Classifier = default_groups,
    ready_checks: Mapping[str, Check] | None = None,
    problems: Mapping[type[DomainError], ProblemType] | None = None,
    read_pools: Sequence[ReadPool] = (),
    private_paths: Sequence[str] = ("/internal/", "/metrics"),
    openapi: Callable[[], dict[str, Any]] | None = None,
) -> Starlette:
    """The app for `service`; `lifespan`, if given, runs inside the shared one (pools open);
    `rate_limit_groups` names each request's route group (reads, writes, admin, internal);
    `ready_checks` are the service's own dependencies for `/ready`, beside PostgreSQL and Redis;
    `problems` maps the service's own domain errors to problem types; `read_pools` are the
    service's other PostgreSQL pools (renewed with the main one after an outage);
    `private_paths` are path prefixes whose answers are personal (never stored by a cache),
    beside any answer to a request that carries credentials; `openapi` builds the service's
    OpenAPI document, served at /openapi.json."""
    db = create_database(settings)
    outage = Outage(
        "PostgreSQL",
        log,
        probe=lambda: ping(db),
        on_down=lambda: expire_connections(db, *read_pools),
    )
    redis = create_redis(settings)
    metrics = ServiceMetrics()
    rate_limit: list[Middleware] = []
    if settings.rate_limit_enabled:
        limits = {
            group: parse_limits(getattr(settings, f"rate_limit_{group}")) for group in RATE_LIMIT_GROUPS
        }
        limiter = RateLimiter(redis, keys_for(settings), max_wait_seconds=settings.redis_socket_timeout)
        _expose_rate_limiter(metrics, limiter)
        rate_limit.append(
            Middleware(
                RateLimitMiddleware,
                limiter=limiter,
                limits=limits,
                classify=rate_limit_groups,
                trusted_proxies=parse_networks(settings.trusted_proxies),
                fail_open=settings.rate_limit_fail_open,
            )
        )

    @asynccontextmanager
    async def shared_lifespan(app: Starlette) -> AsyncIterator[None]:
        await check_mode(settings)  # a wrong REDIS_CLUSTER stops the start (uvicorn says why)
        await connect(db)
        # One of several processes: its readings go to the files /metrics reads (any process).
        syncing = asyncio.create_task(metrics.keep_synced()) if metrics.shared else None
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            if syncing is not None:
                syncing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await syncing
                with contextlib.suppress(Exception):  # logged by keep_synced's loop
                    metrics.sync()  # the last counts of a process that stops
            await outage.aclose()
            await db.disconnect()
            await redis.aclose()

    app = Starlette(
        # The service's own routes first: the router tries each route's pattern in turn, and
        # they take nearly all the traffic.
        routes=[
            *routes,
            *health_routes(service, _dependency_checks, settings.ready_timeout),
            Route("/metrics", _metrics, methods=["GET"]),
            *([openapi_route(openapi)] if openapi else []),
        ],
        middleware=[
            *_tracing_middleware(),
            Middleware(RequestContextMiddleware, metrics=metrics, private_paths=tuple(private_paths)),
            *browser_middleware(settings),
            Middleware(UnexpectedErrorMiddleware),
            Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
            *rate_limit,
        ],
        exception_handlers=exception_handlers(problems),
        lifespan=shared_lifespan,
    )
    expose_pools(metrics, redis, db, *read_pools[:1])
    app.state.settings = settings
    app.state.db = db
    app.state.database_outage = outage
    app.state.redis = redis
    app.state.metrics = metrics
    app.state.ready_checks = dict(ready_checks or {})
    app.state.token_verifier = TokenVerifier(settings)
    return app


def serve(service: str, settings_class: type[S], create_app: Callable[[S], Starlette], factory: str) -> None:
    """Run `service` until SIGTERM/SIGINT: in this process, or with WEB_CONCURRENCY > 1 in that
    many worker processes sharing its port, each made by `factory` (the import name of a
    function calling `worker_app`: uvicorn starts each worker afresh)."""
    with exit_on_settings_error(service):
        settings = load_settings(settings_class)
        if settings.web_concurrency == 1:
            configure_tracing(f"storefront-{service}")  # before the app: its middleware reads it
        # Made here even for workers (no I/O: pools open in the lifespan): a bad setting, a
        # key file say, stops the service with one line, not each worker at every restart.
        app = create_app(settings)
    configure_logging(settings.log_level)
    if settings.web_concurrency > 1:
        sys.exit(_run_workers(factory, settings))
    try:
        _run(app, settings)
    finally:
        shutdown_tracing()


def worker_app(service: str, settings_class: type[S], create_app: Callable[[S], Starlette]) -> Starlette:
    """The app of one of a service's worker processes (the parent checked the settings)."""
    try:
        settings = load_settings(settings_class)
        configure_tracing(f"storefront-{service}")
        atexit.register(shutdown_tracing)
        configure_logging(settings.log_level)
        return create_app(settings)
    except Exception:
        # uvicorn restarts a worker that exits, but stops them all on this status: a worker
        # that cannot be made would fail the same way on every restart.
        log.exception("the %s worker cannot start", service)
        sys.exit(STARTUP_FAILURE)


def _run_workers(factory: str, settings: Settings) -> int:
    """Run the workers until told to stop; the exit status (STARTUP_FAILURE if one could not start)."""
    # Each worker has its own pools, token cache and rate-limit batches (all sized per process);
    # their metrics meet in a folder of this run's own (shared.telemetry.multiprocess).
    with tempfile.TemporaryDirectory(prefix="storefront-metrics-") as folder:
        multiprocess.prepare(Path(folder) / "metrics")
        config = uvicorn.Config(factory, factory=True, workers=settings.web_concurrency, **_options(settings))
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
    failed = any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)
    return STARTUP_FAILURE if failed else 0


def _run(app: Starlette, settings: Settings) -> None:
    uvicorn.run(app, **_options(settings))


def _options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,  # RequestContextMiddleware writes the access log, with request ids
        "server_header": False,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "timeout_graceful_shutdown": 10,
    }
