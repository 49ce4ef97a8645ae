"""The catalog's refusals that categories and products share, worded once."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.errors import Conflict, ValidationFailed, invalid


def duplicate(exc: asyncpg.UniqueViolationError, values: dict[str, Any]) -> Conflict:
    if exc.constraint_name == "categories_name_key":
        return Conflict(f"A category named {values.get('name')!r} already exists.")
    if exc.constraint_name == "products_sku_key":
        return Conflict(f"A product with sku {values.get('sku')!r} already exists.")
    return Conflict("This would duplicate an existing record.")


def no_changes() -> ValidationFailed:
    error = invalid("(body)", "no field to change")
    error.detail = "The body sets no field; send at least one field to change."
    return error


def unknown_category(category_id: int) -> ValidationFailed:
    return invalid("category_id", f"no category has id {category_id}")
