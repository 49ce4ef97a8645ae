"""Small helpers routes share: the class-based endpoint, the `{name:id}` path converter, typed
path ids, pool access."""

from __future__ import annotations

from typing import Any, ClassVar

from databases import Database
from starlette.convertors import Convertor, register_url_convertor
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

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


class Endpoint(HTTPEndpoint):
    """Starlette's class-based endpoint (one method per HTTP verb, 405 with `Allow` for the
    others), with the class's verbs listed once when the class is made: Starlette lists them on
    every request, a few microseconds of every product page."""

    _verbs: ClassVar[list[str]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._verbs = [
            method
            for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY")
            if hasattr(cls, method.lower()) or (method == "HEAD" and hasattr(cls, "get"))
        ]

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope, self.receive, self.send = scope, receive, send
        self._allowed_methods = self._verbs


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
