"""The PostgreSQL connection pool of a service process (databases + asyncpg).

Opened and closed by the app's lifespan, never at import time. Binds in SQL must carry their
type (`CAST(:ids AS bigint[])`) where PostgreSQL cannot infer it: asyncpg sends untyped
parameters as text.

Two measured costs are avoided (scripts/bench_cart):
- asyncpg resets a connection on every release to the pool (`RESET ALL`, `UNLISTEN *`, ... : a
  round trip, about 0.14 ms, per query here). Pooled connections carry no session state in
  these services (no SET, LISTEN or session advisory lock: those use connections of their
  own), so the reset only rolls back a transaction left open, which costs nothing otherwise.
- `databases` compiles every query through SQLAlchemy (about 0.25 ms). The hottest reads use
  `fetch_fast`: asyncpg itself, with `$n` parameters and its prepared-statement cache.
- Even then, `databases` sets up a connection per call (an object with three locks, a per-task
  map; about 50 us here) so that a transaction's statements share one connection. A read that
  is a route's whole answer (the cart page) needs no transaction: `ReadPool` is a plain asyncpg
  pool for those, and `fetch_fast` runs on it when given one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import asyncpg
import databases
from databases import DatabaseURL
from databases.core import Transaction

from shared.config import Settings

log = logging.getLogger(__name__)

# Errors meaning the database cannot be reached now, not that the work is wrong: the same work
# may succeed later, and splitting it up cannot help. (CannotConnectNowError, AdminShutdownError
# and CrashShutdownError are a server starting or stopping; they are not PostgresConnectionError.)
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    OSError,  # ConnectionError among them
    TimeoutError,
)


async def _reset(connection: asyncpg.Connection) -> None:
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


class _Transaction(Transaction):
    """databases' transaction, giving its connection back however the transaction ends.

    databases 0.9 releases a transaction's connection only after its COMMIT or ROLLBACK
    succeeded (and not at all when BEGIN fails): on a connection the server dropped, the pool
    slot leaked, and the task stayed bound to the dead connection, so a long-lived task (the
    worker's loop) failed every statement forever after one database crash, and a web process
    ran out of pooled connections after as many crashes mid-transaction as its pool size. Here
    the release is in a `finally`.
    """

    async def start(self) -> Transaction:
        connection = self._connection
        self._transaction = connection._connection.transaction()
        async with connection._transaction_lock:
            is_root = not connection._transaction_stack
            await connection.__aenter__()
            try:
                await self._transaction.start(is_root=is_root, extra_options=self._extra_options)
            except BaseException:
                self._transaction = None
                await connection.__aexit__()
                raise
            connection._transaction_stack.append(self)
        return self

    async def commit(self) -> None:
        await self._end("commit")

    async def rollback(self) -> None:
        await self._end("rollback")

    async def _end(self, how: str) -> None:
        connection = self._connection
        async with connection._transaction_lock:
            if connection._transaction_stack[-1] is not self:
                raise RuntimeError("a transaction must end before the one it is nested in")
            connection._transaction_stack.pop()
            transaction, self._transaction = self._transaction, None
            try:
                if transaction is not None:
                    await getattr(transaction, how)()
            finally:
                await connection.__aexit__()


class Database(databases.Database):
    """`databases.Database` whose transactions release their connection even when it died."""

    def transaction(self, *, force_rollback: bool = False, **kwargs: Any) -> Transaction:
        return _Transaction(self.connection, force_rollback=force_rollback, **kwargs)


def create_database(settings: Settings) -> Database:
    return Database(
        settings.database_url,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        command_timeout=settings.database_command_timeout,
        reset=_reset,
    )


async def connect(db: databases.Database) -> None:
    """Open the pool. A process must start even while the database is down (it answers 503s
    and /ready says why, rather than crash-looping): if the first connections cannot be made,
    the pool opens empty and connects on first use."""
    try:
        await db.connect()
    except DATABASE_UNAVAILABLE as exc:
        log.warning("the database pool starts empty: the database cannot be reached (%s)", exc)
        db._backend._options["min_size"] = 0  # databases passes these to asyncpg.create_pool
        await db.connect()


def create_read_pool(settings: Settings) -> ReadPool:
    """The read pool of a service, configured as its `Database` is, with its own size and a
    server-side statement timeout."""
    return ReadPool(
        settings.database_url,
        min_size=min(settings.database_pool_min, settings.database_read_pool_max),
        max_size=settings.database_read_pool_max,
        command_timeout=settings.database_command_timeout,
        statement_timeout=settings.database_read_timeout,
    )


class ReadPool:
    """A plain asyncpg pool for reads outside any transaction (opened by the app's lifespan).
    Its connections are its own: a read here never sees a transaction's uncommitted writes."""

    def __init__(
        self, url: str, min_size: int, max_size: int, command_timeout: float, statement_timeout: float
    ) -> None:
        self._options = {
            **connect_arguments(url),
            "min_size": min_size,
            "max_size": max_size,
            "command_timeout": command_timeout,
            # Cancelled by the server (the connection stays usable), not only given up on by
            # the client as command_timeout does while the query goes on running.
            "server_settings": {"statement_timeout": str(math.ceil(statement_timeout * 1000))},
        }
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        """Open the pool; if the database cannot be reached, open it empty (see `connect`)."""
        try:
            self._pool = await asyncpg.create_pool(reset=_reset, **self._options)
        except DATABASE_UNAVAILABLE as exc:
            log.warning("the read pool starts empty: the database cannot be reached (%s)", exc)
            self._pool = await asyncpg.create_pool(reset=_reset, **{**self._options, "min_size": 0})

    async def disconnect(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        if self._pool is None:
            raise RuntimeError("the read pool is not connected")
        rows: list[asyncpg.Record] = await self._pool.fetch(sql, *args)
        return rows

    async def ping(self) -> None:
        await self.fetch("SELECT 1")

    async def expire_connections(self) -> None:
        if self._pool is not None:
            await self._pool.expire_connections()


def connect_arguments(url: str) -> dict[str, Any]:
    """asyncpg's connection arguments for DATABASE_URL, read as `databases`' asyncpg backend
    reads it (host, port, user, password, database, and an `ssl` option), so the read pool
    reaches the same server the same way; asyncpg given the URL itself would pass other query
    options to the server as settings."""
    parsed = DatabaseURL(url)
    arguments: dict[str, Any] = {
        "host": parsed.hostname,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "database": parsed.database,
    }
    ssl = parsed.options.get("ssl")
    if ssl is not None:
        arguments["ssl"] = {"true": True, "false": False}.get(ssl.lower(), ssl.lower())
    return arguments


async def fetch_fast(source: databases.Database | ReadPool, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Rows of `sql` (with `$1`-style parameters), straight through asyncpg. For the few hottest
    reads only; everything else goes through `databases`. Given the `Database`, it runs on the
    calling task's connection, so inside a `db.transaction()` it reads that transaction's
    state; given a `ReadPool`, on one of the pool's connections."""
    if isinstance(source, ReadPool):
        return await source.fetch(sql, *args)
    async with source.connection() as connection:
        rows: list[asyncpg.Record] = await connection.raw_connection.fetch(sql, *args)
        return rows


def inserted(row: Any) -> Mapping[str, Any]:
    """The row an `INSERT ... RETURNING` gave back (it returns its row or raises)."""
    if row is None:
        raise RuntimeError("INSERT ... RETURNING returned no row")
    mapping: Mapping[str, Any] = row._mapping
    return mapping


async def expire_connections(db: databases.Database, *reads: ReadPool) -> None:
    """Replace every pooled connection at its next use: after an outage, a connection that looks
    open may be dead (one whose server went away without a word is only found out by a query).
    asyncpg already replaces connections it saw close; this covers the ones it did not."""
    pool = getattr(db._backend, "_pool", None)  # databases keeps its asyncpg pool here
    if pool is not None:
        await pool.expire_connections()
    for read_pool in reads:
        await read_pool.expire_connections()


async def ping(db: databases.Database) -> None:
    await db.fetch_val("SELECT 1")


async def compare_and_set(
    db: databases.Database,
    table: str,
    columns: str,
    allowed: frozenset[str],
    row_id: int,
    version: int,
    changes: Mapping[str, Any],
) -> Mapping[str, Any] | None:
    """UPDATE ... WHERE version = :version: of concurrent writers expecting one version, the
    first commits and the rest match no row (their UPDATE re-checks the committed row)."""
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments = ", ".join(f"{column} = :{column}" for column in sorted(changes))
    row = await db.fetch_one(
        f"UPDATE {table} SET {assignments}, version = version + 1, updated_at = now()"
        f" WHERE id = :id AND version = :version RETURNING {columns}",
        {**changes, "id": row_id, "version": version},
    )
    return None if row is None else row._mapping
