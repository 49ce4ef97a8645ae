"""A check on every test (tests/conftest.py uses it): no script or transaction a cluster client sends
has keys of more than one slot. It matters wherever a test talks to a cluster: the tests of
tests/integration/cluster, and every test when the suite runs on one (STOREFRONT_TEST_REDIS).

The cluster refuses such a command (CROSSSLOT), and the cache and the limiter take that for
Redis failing: they would step aside quietly and a test of them could still pass. The check
looks at every script call and transaction the cluster client sends and fails the test that
sent one across slots.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio.cluster import ClusterPipeline, TransactionStrategy
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot
from redis.exceptions import CrossSlotTransactionError


def _slots(args: tuple[Any, ...]) -> set[int]:
    """The slots of a script call's keys (EVAL/EVALSHA script numkeys key...); none otherwise."""
    if not args or str(args[0]).upper() not in ("EVAL", "EVALSHA"):
        return set()
    keys = args[3 : 3 + int(args[2])]
    return {key_slot(key if isinstance(key, bytes) else str(key).encode()) for key in keys}


@pytest.fixture(autouse=True)
def cross_slot(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Script calls and transactions sent with keys of several slots during the test (the test
    fails if there were any): direct, in pipelines and in MULTI."""
    refused: list[tuple[str, tuple[Any, ...]]] = []
    direct, queued = ClusterClient.execute_command, ClusterPipeline.execute_command

    async def spied_direct(self: ClusterClient, *args: Any, **kwargs: Any) -> Any:
        if len(_slots(args)) > 1:
            refused.append((str(args[0]), args))
        return await direct(self, *args, **kwargs)

    def spied_queued(self: ClusterPipeline, *args: Any, **kwargs: Any) -> Any:
        if len(_slots(args)) > 1:
            refused.append((str(args[0]), args))
        return queued(self, *args, **kwargs)

    execute = TransactionStrategy._execute_transaction

    async def spied_transaction(self: TransactionStrategy, stack: Any, raise_on_error: bool) -> Any:
        try:
            return await execute(self, stack, raise_on_error)
        except CrossSlotTransactionError:
            refused.append(("MULTI", tuple(command.args for command in stack)))
            raise

    monkeypatch.setattr(ClusterClient, "execute_command", spied_direct)
    monkeypatch.setattr(ClusterPipeline, "execute_command", spied_queued)
    monkeypatch.setattr(TransactionStrategy, "_execute_transaction", spied_transaction)
    yield refused
    assert not refused, f"commands sent with keys of several slots: {refused}"
