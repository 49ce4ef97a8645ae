"""The catalog's records (what the API answers and events carry) and the commands that change
them (validated by msgspec before any service function sees them).

JSON field names follow the columns. Prices travel as decimal strings ("19.99"), never JSON
numbers: a float cannot hold most prices exactly, so a number in a price field is refused.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from shared.types import LINE_PATTERN, TEXT_PATTERN, Body, Id, Money, Version, described

Stock = Annotated[int, Meta(ge=0, le=1_000_000_000)]
Sku = Annotated[
    str,
    Meta(
        pattern=described(
            r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z",
            "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    ),
]
CategoryName = Annotated[str, Meta(min_length=1, max_length=100, pattern=LINE_PATTERN)]
ProductName = Annotated[str, Meta(min_length=1, max_length=200, pattern=LINE_PATTERN)]
CategoryDescription = Annotated[str, Meta(max_length=2000, pattern=TEXT_PATTERN)]
ProductDescription = Annotated[str, Meta(max_length=5000, pattern=TEXT_PATTERN)]


class CategoryCreate(Body, kw_only=True):
    name: CategoryName
    description: CategoryDescription = ""
    is_active: bool = True


class CategoryPatch(Body, kw_only=True):
    name: CategoryName | UnsetType = UNSET
    description: CategoryDescription | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET
    version: Version | None = None


class ProductCreate(Body, kw_only=True):
    sku: Sku
    name: ProductName
    description: ProductDescription = ""
    price: Money
    stock: Stock = 0
    category_id: Id | None = None
    is_active: bool = True


class ProductPatch(Body, kw_only=True):
    sku: Sku | UnsetType = UNSET
    name: ProductName | UnsetType = UNSET
    description: ProductDescription | UnsetType = UNSET
    price: Money | UnsetType = UNSET
    stock: Stock | UnsetType = UNSET
    category_id: Id | UnsetType | None = UNSET
    is_active: bool | UnsetType = UNSET
    version: Version | None = None


class Category(msgspec.Struct, kw_only=True):
    id: int
    name: str
    description: str
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class Product(msgspec.Struct):
    """A product as the API shows it. Positional, unlike the other structs: the read path makes
    it from a row's values in one call (`read_repo.product_of`; by name it costs seven times
    as much, a quarter of a listing's time in Python). The catalog's columns are these fields,
    in this order (`repo.PRODUCT_COLUMNS`)."""

    id: int
    sku: str
    name: str
    description: str
    price: Decimal
    stock: int
    category_id: int | None
    category_name: str | None
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime
