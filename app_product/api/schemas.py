"""The catalog API's query strings and page bodies (validated and encoded by msgspec).

Query parsing lives here and in `app_product.api.queries`: service functions take plain values.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from app_product.catalog.models import Category, Product
from shared.types import LINE_PATTERN, Body, Id, PageSize, Version

SearchText = Annotated[str, Meta(min_length=1, max_length=100, pattern=LINE_PATTERN)]

MAX_BATCH_IDS = 100
DEFAULT_PAGE_SIZE = 20


class ProductQuery(Body, kw_only=True):
    """`GET /api/products`: a filtered page, or with `ids` a batch of named products."""

    limit: PageSize | None = None  # default DEFAULT_PAGE_SIZE; not with ids
    cursor: str | None = None
    category_id: Id | None = None
    is_active: bool | None = None
    q: SearchText | None = None
    ids: str | None = None


class CategoryList(msgspec.Struct):
    items: list[Category]


class ProductPage(msgspec.Struct):
    items: list[Product]
    next_cursor: str | None = None
    # Only in answers to `?ids=`: the requested ids that name no product.
    missing: list[int] | UnsetType = UNSET
    # Only in answers to `?q=`: the words searched for, in the order typed (a typo or an
    # unfinished last word is replaced by the word found in the catalog).
    searched: list[str] | UnsetType = UNSET


class CategoryQuery(Body, kw_only=True):
    is_active: bool | None = None


class VersionQuery(Body, kw_only=True):
    """DELETE may name the version it read, as `?version=` or If-Match."""

    version: Version | None = None
