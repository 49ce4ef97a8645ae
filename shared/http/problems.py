"""Errors as RFC 9457 problem details (`application/problem+json`), and their Starlette handlers.

Two kinds of error become problems. Domain errors (`shared.errors`), raised by services, are
mapped to a status and a problem type here, by the most specific class in `PROBLEMS` or in the
service's own table (`build_app(problems=...)`). HTTP errors (`Problem` subclasses), raised by
the HTTP layer itself (a malformed body, a missing token), carry their status. Starlette's own
HTTP errors, a database that cannot be reached (a 503 with Retry-After, the outage logged
once) and any unexpected exception (`unexpected_response`: a bare 500, its traceback logged
once) become problems too, carrying the request id: no stack trace or exception text ever
reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar, NamedTuple

import asyncpg
import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ExceptionHandler

from shared.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    PreconditionFailed,
    StaleVersion,
    Unavailable,
    ValidationFailed,
)
from shared.http.request_context import current_request_id
from shared.storage.postgres import DATABASE_UNAVAILABLE

PROBLEM_MEDIA_TYPE = "application/problem+json"
# RFC 9457 section 3.1.1: problem types that do not resolve should be tag URIs.
PROBLEM_TYPE_PREFIX = "tag:storefront,2026:problem:"

log = logging.getLogger(__name__)


class ProblemType(NamedTuple):
    status: int
    slug: str
    title: str


# The shared domain errors; a service adds its own (subclasses of these) to build_app.
PROBLEMS: Mapping[type[DomainError], ProblemType] = {
    DomainError: ProblemType(500, "internal-error", "Internal server error"),
    NotFound: ProblemType(404, "not-found", "Not found"),
    Conflict: ProblemType(409, "conflict", "Conflict"),
    StaleVersion: ProblemType(409, "stale-version", "The resource has changed"),
    PreconditionFailed: ProblemType(412, "precondition-failed", "Precondition failed"),
    ValidationFailed: ProblemType(422, "validation-failed", "The request body is invalid"),
    Unavailable: ProblemType(503, "service-unavailable", "Service unavailable"),
}


class Problem(Exception):
    """An error of the HTTP layer itself, with its status; subclasses fix status, slug, title."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.extensions = extensions


class BadRequest(Problem):
    status, slug, title = 400, "bad-request", "Bad request"


class MalformedJSON(Problem):
    status, slug, title = 400, "malformed-json", "Malformed JSON body"


class InvalidQuery(Problem):
    status, slug, title = 400, "invalid-query", "Invalid query parameters"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class InvalidBody(Problem):
    status, slug, title = 422, "validation-failed", "The request body is invalid"


class PreconditionRequired(Problem):
    status, slug, title = 428, "precondition-required", "A version is required"


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """Build the problem+json response; the one place the body's shape is defined."""
    request_id = current_request_id()
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if request_id is not None:
        body["request_id"] = request_id
    if errors:
        body["errors"] = errors
    if extensions:
        body.update(extensions)
    response = Response(msgspec.json.encode(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


async def _handle_problem(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, Problem):
        raise TypeError(f"not a Problem: {exc!r}")
    return problem_response(
        exc.status,
        exc.slug,
        exc.title,
        exc.detail,
        instance=request.url.path,
        errors=exc.errors,
        headers=exc.headers,
        extensions=exc.extensions,
    )


def _domain_handler(table: Mapping[type[DomainError], ProblemType]) -> ExceptionHandler:
    async def handle(request: Request, exc: Exception) -> Response:
        kind = next(table[cls] for cls in type(exc).__mro__ if cls in table)
        if not isinstance(exc, DomainError):
            raise TypeError(f"not a DomainError: {exc!r}")
        headers, extensions = {}, dict(exc.extensions)
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
            extensions["retry_after"] = exc.retry_after
        return problem_response(
            kind.status,
            kind.slug,
            kind.title,
            exc.detail,
            instance=request.url.path,
            errors=exc.errors,
            headers=headers,
            extensions=extensions,
        )

    return handle


_HTTP_DETAILS = {
    404: "No route matches {method} {path}.",
    405: "{method} is not allowed on {path}.",
    413: "The request body is larger than this service accepts.",
}


async def _handle_http(request: Request, exc: Exception) -> Response:
    # Starlette raises these itself: unknown routes, wrong methods, oversized bodies.
    if not isinstance(exc, HTTPException):
        raise TypeError(f"not an HTTPException: {exc!r}")
    status = HTTPStatus(exc.status_code)
    template = _HTTP_DETAILS.get(exc.status_code)
    if template is None:
        detail = exc.detail or status.description
    else:
        detail = template.format(method=request.method, path=request.url.path)
    slug = status.phrase.lower().replace(" ", "-")
    return problem_response(
        status.value, slug, status.phrase, detail, instance=request.url.path, headers=exc.headers
    )


async def _handle_data_error(request: Request, exc: Exception) -> Response:
    # Validation should stop every value the database cannot store before it gets there; this
    # is the backstop, so that one that slips through is still the client's 400, not a 500.
    log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        400,
        "unstorable-value",
        "Bad request",
        "The request holds a value that cannot be stored.",
        instance=request.url.path,
    )


# How long a client should wait before trying again while the database is down.
DATABASE_RETRY_AFTER_SECONDS = 2


async def _handle_database_unavailable(request: Request, exc: Exception) -> Response:
    # An outage is the operator's to hear about once (the app's Outage logs it), not a bug to
    # trace per request; the client is told to come back shortly.
    outage = getattr(request.app.state, "database_outage", None)
    if outage is not None:
        outage.failed(exc)
    return problem_response(
        503,
        "database-unavailable",
        "The database cannot be reached",
        "The service cannot reach its database; try again shortly.",
        instance=request.url.path,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        extensions={"retry_after": DATABASE_RETRY_AFTER_SECONDS},
    )


async def _handle_query_cancelled(request: Request, exc: Exception) -> Response:
    # A read ran past DATABASE_READ_TIMEOUT (or an operator cancelled it): the server is busy,
    # not the request wrong. Logged, as a slow statement is worth an operator's look.
    log.warning("a statement ran too long on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        503,
        "query-timeout",
        "The query took too long",
        "The database did not answer in time; try again shortly.",
        instance=request.url.path,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        extensions={"retry_after": DATABASE_RETRY_AFTER_SECONDS},
    )


def unexpected_response(path: str, exc: BaseException) -> Response:
    """The 500 for an exception no handler took, logged here once with its traceback (see
    shared.http.unexpected: Starlette's own last handler would re-raise it, and the server
    would log the same traceback a second time)."""
    log.error("unhandled error on %s", path, exc_info=exc)
    request_id = current_request_id()
    headers = {"X-Request-ID": request_id} if request_id else None
    return problem_response(
        500,
        "internal-error",
        "Internal server error",
        "The server failed to handle the request; quote the request id when reporting it.",
        instance=path,
        headers=headers,
    )


# Every handler is a coroutine: Starlette runs a plain function in a worker thread, a thread hop
# per refused request (and an outage's bookkeeping needs the event loop).
def exception_handlers(
    problems: Mapping[type[DomainError], ProblemType] | None = None,
) -> dict[Any, ExceptionHandler]:
    """The handlers every storefront app installs; `problems`: the service's own domain errors."""
    return {
        DomainError: _domain_handler({**PROBLEMS, **(problems or {})}),
        Problem: _handle_problem,
        HTTPException: _handle_http,
        asyncpg.DataError: _handle_data_error,
        asyncpg.QueryCanceledError: _handle_query_cancelled,
        **dict.fromkeys(DATABASE_UNAVAILABLE, _handle_database_unavailable),
    }
