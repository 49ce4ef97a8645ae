"""OpenAPI 3.1 documents generated from the msgspec types the routes parse and encode.

A service describes each operation once (`Operation`, in its `api/contract.py`): its path,
query and body types, answers and the headers they carry, and who may call it. The document is
built from those with `msgspec.json.schema_components`, so a schema cannot drift from the type
that validates the request or encodes the answer; `tests` fail when a route has no operation.
The answers every operation shares (a rate limit, an outage, a refused token or body) are added
here from what the operation declares, once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.errors import FieldError
from shared.http.problems import PROBLEM_MEDIA_TYPE

JSON = "application/json"


class ProblemDetails(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details, as every refusal and error is answered. Extensions (for
    example `current_version`, `retry_after`, `checks`) may follow."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


_INT = {"type": "string", "pattern": "^[0-9]+$"}
RESPONSE_HEADERS: Mapping[str, tuple[str, dict[str, Any]]] = {
    "ETag": ("The representation's entity tag: send it as If-Match or If-None-Match.", {"type": "string"}),
    "Location": ("Where the created resource is.", {"type": "string"}),
    "Cache-Control": (
        "public, max-age=N for public reads; no-store for personal answers.",
        {"type": "string"},
    ),
    "Retry-After": ("Seconds to wait before trying again.", _INT),
    "RateLimit-Limit": ("Requests allowed in the window of the limit nearest to refusing.", _INT),
    "RateLimit-Remaining": ("Requests left in that window.", _INT),
    "RateLimit-Reset": ("Seconds until that window frees a request.", _INT),
    "X-Request-ID": (
        "The request's id (the client's, or one made up): quote it when reporting.",
        {"type": "string"},
    ),
    "Idempotent-Replayed": (
        "true when this is the stored answer of an earlier request with the same key.",
        {"type": "string"},
    ),
}
REQUEST_HEADERS: Mapping[str, tuple[str, dict[str, Any]]] = {
    "Idempotency-Key": (
        "Makes a write safe to retry: a repeat with the same key (and body) gets the first answer.",
        {"type": "string", "pattern": "^[!-~]{1,255}$"},
    ),
    "If-Match": (
        "The version read, as its ETag: the write applies only if it is still current.",
        {"type": "string"},
    ),
    "If-None-Match": (
        "ETags the client holds: answered 304 Not Modified if one is current.",
        {"type": "string"},
    ),
}
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


@dataclass(frozen=True)
class Answer:
    """One status an operation answers: its body (a msgspec type, a JSON Schema, or None for
    none) and the headers it carries beside the ones every answer has."""

    status: int
    description: str
    body: Any = None
    headers: tuple[str, ...] = ()
    media: str = JSON


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as OpenAPI writes it: /api/products/{id}
    summary: str
    answers: tuple[Answer, ...]
    tag: str
    query: type | None = None
    # A tuple: the body is one of these shapes (`oneOf`), which the route tells apart itself.
    body: type | tuple[type, ...] | None = None
    body_required: bool = True
    # "public", "user" (any valid token), or the role the token must hold.
    access: str = "public"
    request_headers: tuple[str, ...] = ()
    # Reads or writes PostgreSQL (so it may answer 503 while the database is away).
    database: bool = True
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def _problem(status: int, description: str, *headers: str) -> Answer:
    return Answer(status, description, ProblemDetails, headers)


def _shared_answers(operation: Operation) -> list[Answer]:
    answers = [_problem(429, "Rate limited: wait Retry-After seconds.", "Retry-After", *RATE_LIMIT_HEADERS)]
    if operation.database:
        answers.append(
            _problem(
                503,
                "The database (or a service it needs) cannot be reached, or took too long.",
                "Retry-After",
            )
        )
    if operation.access != "public":
        answers.append(_problem(401, "No valid token (see WWW-Authenticate)."))
    if operation.access not in ("public", "user"):
        answers.append(_problem(403, f"The token lacks the {operation.access} role."))
    if operation.body is not None:
        answers += [
            _problem(400, "The body is not JSON, or the query string is not understood."),
            _problem(413, "The body is too large."),
            _problem(415, "The body is not application/json."),
            _problem(422, "The body breaks a rule; `errors` names the fields."),
        ]
    if operation.query is not None:
        answers.append(_problem(400, "A query parameter is invalid; `errors` names it."))
    if operation.request_headers:
        answers.append(_problem(400, f"A header ({', '.join(operation.request_headers)}) is malformed."))
    if "Idempotency-Key" in operation.request_headers:
        answers += [
            _problem(409, "A request with this Idempotency-Key is still in flight."),
            _problem(422, "This Idempotency-Key was used for a different request."),
        ]
    if "{" in operation.path:
        answers.append(_problem(404, "Nothing has that id."))
    return answers


def _header_objects(names: Sequence[str], table: Mapping[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {name: {"description": table[name][0], "schema": table[name][1]} for name in names}


def document(title: str, version: str, description: str, operations: Sequence[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`."""
    types: list[Any] = [ProblemDetails]
    for operation in operations:
        types += [operation.query] if operation.query is not None else []
        types += _body_types(operation)
        types += [a.body for a in operation.answers if isinstance(a.body, type) or _is_type(a.body)]
    unique = list(dict.fromkeys(types))
    schemas, components = msgspec.json.schema_components(unique, ref_template="#/components/schemas/{name}")
    schema_of = dict(zip(unique, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(
            operation, schema_of, components
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A JWT whose `uid` (or `sub`) is the user and `roles` their roles.",
                }
            },
        },
    }


def _body_types(operation: Operation) -> list[type]:
    body = operation.body
    return [] if body is None else list(body) if isinstance(body, tuple) else [body]


def _is_type(value: Any) -> bool:
    # list[Model] and the like: generic aliases msgspec can describe.
    return value is not None and not isinstance(value, dict) and hasattr(value, "__origin__")


def _operation(
    operation: Operation, schema_of: Mapping[Any, Any], components: dict[str, Any]
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    for name in _path_names(operation.path):
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
            }
        )
    if operation.query is not None:
        query_schema = components[schema_of[operation.query]["$ref"].rpartition("/")[2]]
        required = set(query_schema.get("required", ()))
        for name, schema in query_schema["properties"].items():
            parameters.append({"name": name, "in": "query", "required": name in required, "schema": schema})
    for name in operation.request_headers:
        description, schema = REQUEST_HEADERS[name]
        parameters.append(
            {"name": name, "in": "header", "required": False, "description": description, "schema": schema}
        )
    found: dict[str, Any] = {
        "summary": operation.summary,
        "tags": [operation.tag],
        "operationId": operation.method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", operation.path),
        "parameters": parameters,
        "responses": {},
    }
    if operation.description:
        found["description"] = operation.description
    if operation.access != "public":
        found["security"] = [{"bearer": []}]
        who = "any signed-in user" if operation.access == "user" else f"the `{operation.access}` role"
        found["description"] = (found.get("description", "") + f"\n\nNeeds a bearer token of {who}.").strip()
    if operation.body is not None:
        shapes = [schema_of[t] for t in _body_types(operation)]
        found["requestBody"] = {
            "required": operation.body_required,
            "content": {JSON: {"schema": shapes[0] if len(shapes) == 1 else {"oneOf": shapes}}},
        }
    everywhere = ["X-Request-ID", *RATE_LIMIT_HEADERS]
    for answer in [*operation.answers, *_shared_answers(operation)]:
        key = str(answer.status)
        if key in found["responses"]:
            # One status, several reasons (a 409 for a stale version and for a key in flight):
            # the first answer's body and headers, every reason in the description.
            known = found["responses"][key]
            if answer.description not in known["description"]:
                known["description"] += f" Or: {answer.description}"
            continue
        response: dict[str, Any] = {
            "description": answer.description,
            "headers": _header_objects([*everywhere, *answer.headers], RESPONSE_HEADERS),
        }
        if answer.body is not None:
            media = PROBLEM_MEDIA_TYPE if answer.body is ProblemDetails else answer.media
            schema = answer.body if isinstance(answer.body, dict) else schema_of[answer.body]
            response["content"] = {media: {"schema": schema}}
        found["responses"][key] = response
    found.update(operation.extra)
    return found


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def openapi_route(build: Any) -> Route:
    """`GET /openapi.json`, built once on first use from `build()` (a dict)."""
    cached: list[bytes] = []

    async def serve(request: Request) -> Response:
        if not cached:
            cached.append(msgspec.json.encode(build()))
        return Response(cached[0], media_type="application/json")

    return Route("/openapi.json", serve, methods=["GET"])
