"""`apply` turns a database that cannot be reached into DependencyDown, which the consumer
backs off on (the events stay pending) and reports once: its message says what failed."""

from contextlib import asynccontextmanager

import pytest

from app_cart.worker.deps import Deps
from app_cart.worker.handlers import apply
from shared.events.consumer import DependencyDown
from shared.events.envelope import new_event


class UnreachableDatabase:
    @asynccontextmanager
    async def transaction(self):
        raise ConnectionRefusedError("connection refused on 127.0.0.1:5432")
        yield


async def test_an_unreachable_database_is_a_dependency_down_naming_the_error():
    event = new_event("category.updated", 1, 2, {"id": 1}, ["name"])
    with pytest.raises(DependencyDown) as raised:
        await apply(Deps(UnreachableDatabase(), None, None), [event])
    assert str(raised.value) == "ConnectionRefusedError: connection refused on 127.0.0.1:5432"
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)
