"""Opaque keyset-pagination cursors.

A cursor is the base64url of a small JSON object naming the last id of the page just served.
Clients treat it as opaque; a cursor we did not issue (or a mangled one) is a 400, never a 500.
Tampering can only move the starting point of the client's own next page, so it is not signed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from shared.errors import FieldError, InvalidQuery
from shared.types import MAX_BIGINT


class _Cursor(msgspec.Struct, forbid_unknown_fields=True):
    after: int


def encode_cursor(after: int) -> str:
    raw = msgspec.json.encode(_Cursor(after=after))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


R = TypeVar("R", bound=Mapping[str, Any])


def page(rows: Sequence[R], limit: int) -> tuple[Sequence[R], str | None]:
    """Split `rows`, fetched with LIMIT `limit` + 1 in id order, into the page and the cursor
    of the next one (None when this is the last page: the extra row did not come back)."""
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(rows[limit - 1]["id"])


def decode_cursor(cursor: str) -> int:
    """The id to continue after; InvalidQuery naming `cursor` if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        decoded = None
    if decoded is None or not 0 <= decoded.after <= MAX_BIGINT:
        message = "is not a cursor this service issued; start again without it"
        raise InvalidQuery(f"cursor: {message}", errors=[FieldError(field="cursor", message=message)])
    return decoded.after
