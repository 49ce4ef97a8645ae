"""Forward-only SQL migrations: `python -m shared.storage.migrations SERVICE [--database-url URL]`.

`sql/<service>/NNN_name.sql` files are applied in order, each in its own transaction together
with its row in `schema_migrations` (so a file is either applied and recorded, or neither).
The target database is created if absent. A session advisory lock serialises concurrent runs:
the second waits, then finds nothing left to do. A file changed after it was applied is refused
(its checksum no longer matches), because the database would silently differ from the code.

asyncpg is used directly rather than `databases`: a migration file holds several statements,
which only the simple query protocol (`Connection.execute` without arguments) accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

SQL_ROOT = Path(__file__).resolve().parents[2] / "sql"
# Any constant works as long as every run uses the same one (advisory locks are per database).
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"storefront.migrations").digest()[:8], "big", signed=True)
_FILE_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path) -> list[Migration]:
    """The migrations in `directory`, in order; refuses stray or duplicate numbers."""
    if not directory.is_dir():
        raise MigrationError(f"no migrations directory at {directory}")
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNN_lower_snake.sql")
        number = match.group(1)
        if number in found:
            raise MigrationError(f"{path.name} and {found[number].path.name} share the number {number}")
        found[number] = Migration(version=path.stem, path=path)
    return list(found.values())


async def ensure_database(database_url: str) -> bool:
    """Create the database named in `database_url` if it does not exist; True if created."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name:
        raise MigrationError("the database URL names no database")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(maintenance)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            return False  # a concurrent run created it between our check and our CREATE
        return True
    finally:
        await conn.close()


async def migrate(database_url: str, directory: Path) -> list[str]:
    """Apply the pending migrations in `directory`; return the versions applied."""
    migrations = discover(directory)
    await ensure_database(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        # Session-level lock, taken before reading what is applied: a concurrent run waits
        # here and then sees everything this one recorded.
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            return await _apply_pending(conn, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    await conn.execute(_CREATE_TABLE)
    applied = dict(await conn.fetch("SELECT version, checksum FROM schema_migrations"))
    known = {m.version for m in migrations}
    unknown = sorted(set(applied) - known)
    if unknown:
        raise MigrationError(f"the database has migrations this code does not know: {', '.join(unknown)}")
    done = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"{migration.path.name} was changed after it was applied; add a new file"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                migration.version,
                migration.checksum,
            )
        done.append(migration.version)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.storage.migrations", description=__doc__.splitlines()[0]
    )
    parser.add_argument("service", help="the folder under sql/ (catalog or cart)")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL"
    )
    parser.add_argument("--sql-root", type=Path, default=SQL_ROOT)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set DATABASE_URL")
    try:
        applied = asyncio.run(migrate(args.database_url, args.sql_root / args.service))
    except (MigrationError, OSError, asyncpg.PostgresError) as exc:
        print(f"migrate {args.service}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    summary = ", ".join(applied) if applied else "nothing to apply"
    print(f"migrate {args.service}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
