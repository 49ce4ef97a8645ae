"""Saying once that a dependency is down, and once that it is back.

An outage makes every request, batch or poll fail the same way; logging each of them would
bury the one line an operator needs (and a traceback per request costs more than the request).
An `Outage` logs a warning when the first failure arrives, nothing for the next ones, and a
warning with the outage's length when the dependency answers again: found by the caller's next
success, or, for a web process that may see no request for a while, by a probe it runs every
`probe_seconds` until one succeeds (after `on_down`, which may, say, drop pooled connections).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable


class Outage:
    def __init__(
        self,
        what: str,
        log: logging.Logger,
        *,
        probe: Callable[[], Awaitable[object]] | None = None,
        probe_seconds: float = 1.0,
        on_down: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.what = what
        self._log = log
        self._probe = probe
        self._probe_seconds = probe_seconds
        self._on_down = on_down
        self._since: float | None = None  # time.monotonic() of the first failure of this outage
        self._prober: asyncio.Task[None] | None = None
        self.outages = 0  # for metrics and tests: outages seen by this process

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        """A call failed because the dependency cannot be reached."""
        if self._since is not None:
            return
        self._since = time.monotonic()
        self.outages += 1
        self._log.warning("%s cannot be reached (%s: %s)", self.what, type(exc).__name__, exc)
        if self._probe is not None:
            self._prober = asyncio.get_running_loop().create_task(self._wait_until_back())

    def succeeded(self) -> None:
        """A call to the dependency succeeded: if it was down, it is back."""
        if self._since is None:
            return
        seconds, self._since = time.monotonic() - self._since, None
        self._log.warning("%s is reachable again after %.1f s", self.what, seconds)

    async def _wait_until_back(self) -> None:
        if self._on_down is not None:
            await self._on_down()
        if self._probe is None:
            return
        while self._since is not None:
            try:
                await self._probe()
            except Exception:  # still down: the outage was announced already
                await asyncio.sleep(self._probe_seconds)
            else:
                self.succeeded()

    async def aclose(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
