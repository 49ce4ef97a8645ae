"""Waiting on a condition with a deadline, in async tests: what another task or process writes
(Redis, PostgreSQL, log records) cannot be awaited, only polled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio


async def until(predicate: Callable[[], Awaitable[bool]], seconds: float = 15, poll: float = 0.05) -> None:
    """Return once `predicate()` is true; TimeoutError after `seconds`."""
    with anyio.fail_after(seconds):
        while not await predicate():  # noqa: ASYNC110 (state written elsewhere: polled)
            await anyio.sleep(poll)
