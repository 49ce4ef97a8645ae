"""What clients send Redis while an action runs (MONITOR), to check that commands meant to be one
step are sent in one MULTI/EXEC: the half-done state another client would see in between cannot
be provoked on demand, but the transaction around the commands can be seen."""

from __future__ import annotations

import collections
import uuid
from collections.abc import Awaitable, Callable

import anyio
from redis.asyncio import Redis


async def commands_sent(redis: Redis, action: Callable[[], Awaitable[object]]) -> list[list[str]]:
    """Run `action` under MONITOR; the commands sent meanwhile, a list per client connection (other
    clients of the same server, say another test run's, included)."""
    token = f"end-{uuid.uuid4().hex}"
    by_client: dict[str, list[str]] = collections.defaultdict(list)
    async with redis.monitor() as monitor:  # a connection of its own, watching once this returns
        await action()
        await redis.echo(token)  # seen once everything before it was
        with anyio.fail_after(10):
            while (info := await monitor.next_command())["command"] != f"ECHO {token}":
                by_client[f"{info['client_address']}:{info['client_port']}"].append(info["command"])
    return list(by_client.values())


def in_one_transaction(sent: list[list[str]], *commands: str) -> bool:
    """Whether one connection sent exactly `commands`, in that order, as one MULTI ... EXEC."""
    expected = ["MULTI", *commands, "EXEC"]
    return any(
        client[start : start + len(expected)] == expected for client in sent for start in range(len(client))
    )
