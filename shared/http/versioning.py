"""Optimistic concurrency: the version a write expects, from the body or an `If-Match` header.

A writer states the version it read; the write applies only if that is still the current one,
so two admins never overwrite each other silently. A stale `version` in the body is a 409; a
stale `If-Match` is a 412, as RFC 9110 (13.1.1) requires of that header. ETags are the version
as a strong entity tag: `"7"`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.requests import Request

from shared.errors import PreconditionFailed, StaleVersion
from shared.http.problems import BadRequest, PreconditionRequired
from shared.types import MAX_INT


def etag(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True)
class ExpectedVersion:
    value: int
    from_header: bool

    def stale(self, current: int) -> StaleVersion:
        """The error for a write that found `current` instead of the expected version."""
        detail = f"Expected version {self.value}, but it is now {current}; read it again and retry."
        error = PreconditionFailed if self.from_header else StaleVersion
        return error(detail, current_version=current)


_ENTITY_TAG = re.compile(r'^\s*"?([1-9][0-9]{0,9})"?\s*\Z')


def _parse_if_match(header: str) -> int:
    match = _ENTITY_TAG.match(header)
    if match is None or int(match.group(1)) > MAX_INT:
        raise BadRequest(f'If-Match must be one strong entity tag such as "3" (got {header[:40]!r}).')
    return int(match.group(1))


def expected_version(request: Request, body_version: int | None) -> ExpectedVersion | None:
    """The version the writer read, from `If-Match` or the body's `version`, if it sent one."""
    header = request.headers.get("if-match")
    from_header = _parse_if_match(header) if header is not None else None
    if from_header is not None and body_version is not None and from_header != body_version:
        raise BadRequest(f"If-Match says version {from_header} but the body says {body_version}.")
    if from_header is not None:
        return ExpectedVersion(from_header, from_header=True)
    if body_version is not None:
        return ExpectedVersion(body_version, from_header=False)
    return None


def required_version(request: Request, body_version: int | None) -> ExpectedVersion:
    """As `expected_version`, but a write that names no version is refused with 428."""
    expected = expected_version(request, body_version)
    if expected is None:
        raise PreconditionRequired(
            "Send the version you read, as `version` in the body or an If-Match header, "
            "so that a concurrent change is not silently overwritten."
        )
    return expected
