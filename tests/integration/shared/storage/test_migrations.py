"""scripts/migrate's engine: creates the database, applies in order, once, under a lock."""

import os
import shutil
import subprocess
import sys
import uuid

import asyncpg
import pytest

from shared.storage.migrations import SQL_ROOT, MigrationError, discover, migrate


async def applied(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [
            r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        ]
    finally:
        await conn.close()


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_creates_the_database_and_applies_everything_once(fresh_db_url):
    expected = [m.version for m in discover(SQL_ROOT / "catalog")]
    assert await migrate(fresh_db_url, SQL_ROOT / "catalog") == expected
    assert await applied(fresh_db_url) == expected
    assert {"categories", "products", "schema_migrations"} <= await tables(fresh_db_url)
    assert await migrate(fresh_db_url, SQL_ROOT / "catalog") == []


async def test_cart_schema_applies(fresh_db_url):
    await migrate(fresh_db_url, SQL_ROOT / "cart")
    assert {
        "carts",
        "cart_items",
        "wishlists",
        "wishlist_items",
        "promo_codes",
        "cart_promo_codes",
    } <= await tables(fresh_db_url)


def test_two_concurrent_runs_apply_each_file_once(fresh_db_url):
    command = [sys.executable, "-m", "shared.storage.migrations", "catalog", "--database-url", fresh_db_url]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    stdouts = sorted(out for out, _ in outputs)
    everything = "migrate catalog: " + ", ".join(m.version for m in discover(SQL_ROOT / "catalog")) + "\n"
    assert everything in stdouts
    assert "migrate catalog: nothing to apply\n" in stdouts


@pytest.fixture
def sql_copy(tmp_path):
    directory = tmp_path / "svc"
    shutil.copytree(SQL_ROOT / "catalog", directory)
    return directory


async def test_a_failing_migration_applies_nothing_of_itself(fresh_db_url, sql_copy):
    (sql_copy / "099_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELECT no_such_function();\n")
    with pytest.raises(asyncpg.PostgresError):
        await migrate(fresh_db_url, sql_copy)
    assert await applied(fresh_db_url) == [m.version for m in discover(SQL_ROOT / "catalog")]
    assert "half_done" not in await tables(fresh_db_url)


async def test_a_changed_applied_file_is_refused(fresh_db_url, sql_copy):
    await migrate(fresh_db_url, sql_copy)
    with (sql_copy / "001_catalog.sql").open("a") as f:
        f.write("\n-- edited after the fact\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(fresh_db_url, sql_copy)


async def test_an_unknown_applied_migration_is_refused(fresh_db_url, sql_copy, tmp_path):
    (sql_copy / "099_extra.sql").write_text("SELECT 1;\n")
    await migrate(fresh_db_url, sql_copy)
    (sql_copy / "099_extra.sql").unlink()
    with pytest.raises(MigrationError, match="099_extra"):
        await migrate(fresh_db_url, sql_copy)


@pytest.mark.parametrize("name", ["1_short.sql", "002-dash.sql", "002_Upper.sql"])
def test_badly_named_files_are_refused(tmp_path, name):
    (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError):
        discover(tmp_path)


def test_duplicate_numbers_are_refused(tmp_path):
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    (tmp_path / "001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share the number"):
        discover(tmp_path)


def test_cli_reports_failure_in_one_line(postgres):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.storage.migrations",
            "nosuchservice",
            "--database-url",
            postgres.url("x"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "nosuchservice" in result.stderr


def test_two_concurrent_migrate_scripts_both_succeed(postgres, redis_server):
    # The script as an operator runs it, twice at once, on databases that do not exist yet.
    root = SQL_ROOT.parent
    env = {
        **os.environ,
        "CATALOG_DATABASE_URL": postgres.url(f"t_{uuid.uuid4().hex[:12]}"),
        "CART_DATABASE_URL": postgres.url(f"t_{uuid.uuid4().hex[:12]}"),
        "REDIS_URL": redis_server.url,
    }
    runs = [
        subprocess.Popen(
            [str(root / "scripts/migrate")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    combined = "".join(out for out, _ in outputs)
    catalog = ", ".join(m.version for m in discover(SQL_ROOT / "catalog"))
    assert combined.count(f"migrate catalog: {catalog}") == 1
    assert combined.count("migrate cart: 001_cart") == 1
    assert combined.count("nothing to apply") == 2
