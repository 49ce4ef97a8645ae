"""JSON in and out of HTTP with msgspec: bodies and query strings into typed structs, structs out.

Bad input never reaches a service function: a wrong content type is a 415, unparseable JSON a
400, a body of the wrong shape a 422 and a bad query string a 400, each naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from shared.errors import FieldError
from shared.http.problems import InvalidBody, InvalidQuery, MalformedJSON, UnsupportedMediaType
from shared.types import PATTERN_MESSAGES

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_PATH = re.compile(r" - at `\$\.?(.*)`$")
_NAMED_FIELD = re.compile(r"(?:unknown|required) field `([^`]+)`")


def _readable(message: str) -> str:
    """msgspec names a failed pattern by its regex; say what the regex means instead."""
    if message.startswith("Expected `str` matching regex "):
        for pattern, text in PATTERN_MESSAGES.items():
            if repr(pattern) in message:
                return text
        return "has an invalid format"
    return message


def field_error(exc: msgspec.ValidationError) -> FieldError:
    """Turn msgspec's message ("Expected `int` - at `$.items[0].qty`") into field + message."""
    message = str(exc)
    match = _PATH.search(message)
    path = match.group(1) if match else ""
    if match:
        message = message[: match.start()]
    message = _readable(message)
    named = _NAMED_FIELD.search(message)
    if named:  # missing or unknown fields are reported at their parent
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return FieldError(field=path or "(body)", message=message)


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def read_json(request: Request, type_: type[T]) -> T:
    """Decode the request body as `type_`; raise a 4xx problem on anything else."""
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type):
        raise UnsupportedMediaType(
            f"Send the body as application/json (got {content_type or 'no content type'!r})."
        )
    body = await request.body()
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        error = field_error(exc)
        raise InvalidBody(f"{error.field}: {error.message}", errors=[error]) from None
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"The body is not valid JSON: {exc}") from None


def parse_query(request: Request, type_: type[T]) -> T:
    """Convert the query string into `type_` (a Struct with forbid_unknown_fields)."""
    params = request.query_params
    repeated = sorted({key for key in params if len(params.getlist(key)) > 1})
    if repeated:
        raise InvalidQuery(
            f"Give each query parameter once ({', '.join(repeated)} repeated).",
            errors=[FieldError(field=key, message="given more than once") for key in repeated],
        )
    try:
        return msgspec.convert(dict(params), type_, strict=False)
    except msgspec.ValidationError as exc:
        error = field_error(exc)
        raise InvalidQuery(f"{error.field}: {error.message}", errors=[error]) from None


def json_response(content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Encode `content` (structs, dicts, lists) with msgspec."""
    return Response(
        _encoder.encode(content), status_code=status_code, headers=headers, media_type="application/json"
    )
