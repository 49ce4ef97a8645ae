"""A TCP load balancer for tests: each new connection goes to the next backend in turn, as a
round-robin balancer in front of several instances of a service would send it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator


class RoundRobin:
    def __init__(self, backends: list[int]) -> None:
        self._turns = itertools.cycle(backends)
        self.connections: Counter[int] = Counter()  # per backend port
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        backend = next(self._turns)
        self.connections[backend] += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", backend)
        except OSError:
            client_writer.close()  # the backend is down: the client sees its connection dropped
            return
        await asyncio.gather(_pipe(client_reader, writer), _pipe(reader, client_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until the sender closes, then close the other side (HTTP/1.1: whole requests)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def round_robin(backends: list[int]) -> AsyncIterator[RoundRobin]:
    balancer = RoundRobin(backends)
    server = await asyncio.start_server(balancer._serve, "127.0.0.1", 0)
    balancer.port = server.sockets[0].getsockname()[1]
    async with server:
        yield balancer
