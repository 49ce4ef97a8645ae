"""Opaque keyset-pagination cursors.

A cursor is the base64url of a small JSON object naming the last id of the page just served
(and, for a page in relevance order, that row's score). Clients treat it as opaque; a cursor
we did not issue (or a mangled one) is a 400, never a 500.
Tampering can only move the starting point of the client's own next page, so it is not signed.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from typing import Protocol

import msgspec

from shared.errors import FieldError
from shared.http.problems import InvalidQuery
from shared.types import MAX_BIGINT


class _Cursor(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    after: int
    score: float | None = None


def encode_cursor(after: int, score: float | None = None) -> str:
    raw = msgspec.json.encode(_Cursor(after=after, score=score))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


def next_cursor(items: Sequence[_HasId], more: bool) -> str | None:
    """The cursor of the page after `items` (in id order); None when no more rows follow."""
    return encode_cursor(items[-1].id) if more and items else None


def decode_cursor(cursor: str) -> int:
    """The id to continue after; InvalidQuery naming `cursor` if it is not one of ours."""
    decoded = _decode(cursor)
    if decoded.score is not None:
        raise _not_ours()
    return decoded.after


def decode_ranked_cursor(cursor: str) -> tuple[float, int]:
    """The (score, id) to continue after in a page in relevance order."""
    decoded = _decode(cursor)
    if decoded.score is None or not math.isfinite(decoded.score):
        raise _not_ours()
    return decoded.score, decoded.after


def _decode(cursor: str) -> _Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise _not_ours() from None
    if not 0 <= decoded.after <= MAX_BIGINT:
        raise _not_ours()
    return decoded


def _not_ours() -> InvalidQuery:
    # A cursor of another query (a search's given to a listing) is as unusable as a mangled one.
    message = "is not a cursor this service issued for this query; start again without it"
    return InvalidQuery(f"cursor: {message}", errors=[FieldError(field="cursor", message=message)])
