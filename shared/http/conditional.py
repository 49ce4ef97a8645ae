"""Conditional GETs and shared caching of public reads (RFC 9110 13.1.2, RFC 9111).

A public answer carries its entity tag and `Cache-Control: public, max-age=N`, so a browser or a
CDN can keep it for N seconds and then revalidate it with `If-None-Match`, answered `304 Not
Modified` with no body when nothing changed. (An answer to a request with credentials is made
`no-store` by `shared.http.request_context`, whatever the route says.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shared.http.json_io import json_response


def entity_tag_of(parts: Iterable[object]) -> str:
    """A strong entity tag for a representation wholly determined by `parts` (a page's ids
    and versions, say): equal parts, equal bytes."""
    digest = hashlib.blake2b(repr(list(parts)).encode(), digest_size=12).hexdigest()
    return f'"{digest}"'


def _opaque(tag: str) -> str:
    return tag.strip().removeprefix("W/")


def is_fresh(request: Request, etag: str) -> bool:
    """Whether the client's `If-None-Match` names `etag` (weak comparison, as the RFC asks of
    this header; `*` matches any current representation)."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    wanted = _opaque(etag)
    return any(tag.strip() == "*" or _opaque(tag) == wanted for tag in header.split(","))


def cache_headers(etag: str, max_age: int) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}


def not_modified(etag: str, max_age: int) -> Response:
    """The 304: no body, and the headers a 200 would have carried for the cache's copy."""
    return Response(status_code=304, headers=cache_headers(etag, max_age))


def public_json(request: Request, content: Any, etag: str, max_age: int) -> Response:
    """`content` as a cacheable 200, or a 304 if the client already holds it."""
    if is_fresh(request, etag):
        return not_modified(etag, max_age)
    return json_response(content, headers=cache_headers(etag, max_age))
