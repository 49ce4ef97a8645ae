"""Types both services' wire formats use: ids, versions, money, page sizes, strict bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta

# One line of text: no control characters (NUL first: PostgreSQL cannot store it), no line or
# paragraph separators, no whitespace at either end.
_NOT_LINE = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
LINE_PATTERN = rf"^[^\s{_NOT_LINE}](?:[^{_NOT_LINE}]*[^\s{_NOT_LINE}])?\Z"
# Free text: tabs and line breaks allowed, other control characters not.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*\Z"

MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1
Id = Annotated[int, Meta(ge=1, le=MAX_BIGINT)]
Version = Annotated[int, Meta(ge=1, le=MAX_INT)]
PageSize = Annotated[int, Meta(ge=1, le=100)]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
# A price as a decimal string: a JSON number cannot hold most prices exactly, so none is taken.
# `\Z` rather than `$`: Python's `$` also matches before a trailing newline.
MONEY_PATTERN = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?\Z"
Money = Annotated[str, Meta(pattern=MONEY_PATTERN)]


# What a value failing each pattern is told, instead of the regular expression.
PATTERN_MESSAGES: dict[str, str] = {
    LINE_PATTERN: "must be one line of text, without control characters or spaces at either end",
    TEXT_PATTERN: "must not contain control characters (other than tabs and line breaks)",
    MONEY_PATTERN: (
        'must be a decimal string with at most 2 decimals and 10 digits before the point, such as "19.99"'
    ),
}


def described(pattern: str, message: str) -> str:
    """Register what a value failing `pattern` is told; return the pattern."""
    PATTERN_MESSAGES[pattern] = message
    return pattern


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies and query strings: unknown fields are refused, since a typo (or a
    field the API does not take, such as a user id) must never be silently ignored."""


def set_fields(patch: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body sets, by name (its `version` is the precondition, not a change)."""
    return {
        field: value
        for field in patch.__struct_fields__
        if field != "version" and (value := getattr(patch, field)) is not UNSET
    }
