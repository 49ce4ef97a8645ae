"""The PostgreSQL connection pool of a service process (databases + asyncpg).

Opened and closed by the app's lifespan, never at import time. Binds in SQL must carry their
type (`CAST(:ids AS bigint[])`) where PostgreSQL cannot infer it: asyncpg sends untyped
parameters as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from databases import Database

from shared.config import Settings


def create_database(settings: Settings) -> Database:
    return Database(
        settings.database_url,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        command_timeout=settings.database_command_timeout,
    )


async def ping(db: Database) -> None:
    await db.fetch_val("SELECT 1")


async def compare_and_set(
    db: Database,
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
