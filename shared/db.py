"""The PostgreSQL connection pool of a service process (databases + asyncpg).

Opened and closed by the app's lifespan, never at import time. Binds in SQL must carry their
type (`CAST(:ids AS bigint[])`) where PostgreSQL cannot infer it: asyncpg sends untyped
parameters as text.
"""

from __future__ import annotations

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
