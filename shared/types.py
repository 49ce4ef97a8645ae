"""Types both services' wire formats use: ids, versions, money, page sizes, strict bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta

Id = Annotated[int, Meta(ge=1, le=2**63 - 1)]
Version = Annotated[int, Meta(ge=1, le=2**31 - 1)]
PageSize = Annotated[int, Meta(ge=1, le=100)]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
# A price as a decimal string: a JSON number cannot hold most prices exactly, so none is taken.
# `\Z` rather than `$`: Python's `$` also matches before a trailing newline.
Money = Annotated[
    str,
    Meta(
        pattern=r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?\Z",
        description="A decimal string with at most 2 decimals and 10 integer digits, such as '19.99'",
    ),
]


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
