"""Small helpers routes share: typed path ids and pool access."""

from __future__ import annotations

from databases import Database
from starlette.requests import Request

from shared.errors import NotFound

_MAX_BIGINT = 2**63 - 1


def path_id(request: Request, what: str, name: str = "id") -> int:
    """A positive bigint id from the path; out-of-range ids name nothing, so they are a 404
    (not a database overflow error)."""
    value = request.path_params[name]
    if not isinstance(value, int) or not 0 < value <= _MAX_BIGINT:
        raise NotFound(f"No {what} has id {value}.")
    return value


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db
