"""Small helpers routes share: the `{name:id}` path converter, typed path ids, pool access."""

from __future__ import annotations

from databases import Database
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request

from shared.errors import NotFound
from shared.types import MAX_BIGINT


class IdConvertor(Convertor[int]):
    """A database id in a path: at most 19 digits, so no path can make `int()` work hard or
    fail (Starlette's `int` converter accepts any number of digits)."""

    regex = "[0-9]{1,19}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())


def path_id(request: Request, what: str, name: str = "id") -> int:
    """A positive bigint id from the path; one out of range names nothing, so it is a 404
    (not a database overflow error)."""
    value = request.path_params[name]
    if not isinstance(value, int) or not 0 < value <= MAX_BIGINT:
        raise NotFound(f"No {what} has id {value}.")
    return value


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db
