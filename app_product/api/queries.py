"""Turning the product listing's query string into what the service takes: a batch of ids, or a
page after a cursor. A query the API cannot take is a 400 naming the parameter."""

from __future__ import annotations

import re

from app_product.api.schemas import DEFAULT_PAGE_SIZE, MAX_BATCH_IDS, ProductQuery
from shared.errors import FieldError
from shared.http.problems import InvalidQuery
from shared.types import MAX_BIGINT

_ID = re.compile(r"^[1-9][0-9]{0,18}\Z")


def _refuse(name: str, message: str) -> InvalidQuery:
    return InvalidQuery(f"{name}: {message}", errors=[FieldError(field=name, message=message)])


def batch_ids(query: ProductQuery) -> list[int] | None:
    """The ids of `?ids=` (deduplicated, in order), or None for a page."""
    if query.ids is None:
        return None
    others = [
        name
        for name in ("limit", "cursor", "category_id", "is_active", "q")
        if getattr(query, name) is not None
    ]
    if others:
        raise _refuse("ids", f"cannot be combined with {', '.join(others)}")
    parts = query.ids.split(",")
    if not all(_ID.match(part) and int(part) <= MAX_BIGINT for part in parts):
        raise _refuse("ids", "must be a comma-separated list of positive integer ids")
    if len(parts) > MAX_BATCH_IDS:
        raise _refuse("ids", f"names {len(parts)} ids; at most {MAX_BATCH_IDS} per request")
    return list(dict.fromkeys(int(part) for part in parts))


def page_size(query: ProductQuery) -> int:
    return query.limit or DEFAULT_PAGE_SIZE
