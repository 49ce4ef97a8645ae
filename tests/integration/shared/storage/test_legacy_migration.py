"""sql/legacy/remove_foreign_keys.sql on a coupled schema shaped like the original services."""

import subprocess

import asyncpg
import pytest

from devtools.servers import pg_bindir
from shared.storage.migrations import SQL_ROOT, ensure_database

LEGACY_SCHEMA = """
CREATE TABLE users (uid varchar(255) PRIMARY KEY, email text);
CREATE TABLE categories (id serial PRIMARY KEY, name varchar(100) NOT NULL);
CREATE TABLE products (
    id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2),
    category_id integer NOT NULL REFERENCES categories (id)
);
CREATE TABLE carts (
    id serial PRIMARY KEY,
    user_id varchar(255) NOT NULL UNIQUE REFERENCES users (uid) ON DELETE CASCADE
);
CREATE TABLE cart_items (
    id serial PRIMARY KEY, cart_id integer NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id integer NOT NULL, quantity integer NOT NULL
);
CREATE TABLE wishlists (id serial PRIMARY KEY, user_id varchar(255) NOT NULL REFERENCES users (uid));
CREATE TABLE wishlist_items (
    id serial PRIMARY KEY, product_id integer NOT NULL,
    wishlist_id integer NOT NULL CONSTRAINT fk_wishlist_items_hand_named REFERENCES wishlists (id)
);
CREATE TABLE promo_codes (id serial PRIMARY KEY, code text UNIQUE NOT NULL);
CREATE TABLE cart_promo_codes (
    id serial PRIMARY KEY,
    cart_id integer NOT NULL REFERENCES carts (id),
    promo_code_id integer NOT NULL REFERENCES promo_codes (id)
);

-- Not one of the seed's links: it must survive.
CREATE TABLE product_images (
    id serial PRIMARY KEY, url text NOT NULL,
    product_id integer NOT NULL CONSTRAINT product_images_product_fk REFERENCES products (id)
);

INSERT INTO users VALUES ('u1', 'a@example.com'), ('u2', 'b@example.com');
INSERT INTO categories (name) VALUES ('Shoes'), ('Hats');
INSERT INTO products (name, price, category_id) VALUES ('Boot', 10, 1), ('Sandal', 5, 1), ('Beanie', 7, 2);
INSERT INTO carts (user_id) VALUES ('u1'), ('u2');
INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (1, 1, 2), (1, 3, 1), (2, 2, 4);
INSERT INTO wishlists (user_id) VALUES ('u1');
INSERT INTO wishlist_items (wishlist_id, product_id) VALUES (1, 2);
INSERT INTO promo_codes (code) VALUES ('SAVE10');
INSERT INTO cart_promo_codes (cart_id, promo_code_id) VALUES (1, 1);
INSERT INTO product_images (url, product_id) VALUES ('boot.jpg', 1);
"""

TABLES = [
    "users", "categories", "products", "carts", "cart_items",
    "wishlists", "wishlist_items", "promo_codes", "cart_promo_codes", "product_images",
]  # fmt: skip


def run_legacy_script(url: str) -> subprocess.CompletedProcess[str]:
    """As the README tells an operator to run it."""
    return subprocess.run(
        [
            str(pg_bindir() / "psql"),
            url,
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            str(SQL_ROOT / "legacy/remove_foreign_keys.sql"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
async def legacy_db(fresh_db_url):
    await ensure_database(fresh_db_url)
    conn = await asyncpg.connect(fresh_db_url)
    await conn.execute(LEGACY_SCHEMA)
    yield conn
    await conn.close()


async def counts(conn) -> dict[str, int]:
    return {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}


async def foreign_keys(conn) -> list[str]:
    rows = await conn.fetch("SELECT conname FROM pg_constraint WHERE contype = 'f' ORDER BY conname")
    return [row["conname"] for row in rows]


async def test_legacy_migration_decouples_and_keeps_every_row(legacy_db, fresh_db_url):
    before = await counts(legacy_db)
    assert len(await foreign_keys(legacy_db)) == 8

    first = run_legacy_script(fresh_db_url)
    assert first.returncode == 0, first.stderr
    assert "fk_wishlist_items_hand_named" in first.stderr  # the NOTICE for a non-standard name
    second = run_legacy_script(fresh_db_url)
    assert second.returncode == 0, second.stderr

    remaining = await legacy_db.fetch(
        "SELECT conrelid::regclass::text AS t, conname FROM pg_constraint WHERE contype = 'f'"
    )
    assert [(r["t"], r["conname"]) for r in remaining] == [("product_images", "product_images_product_fk")]
    assert await counts(legacy_db) == before
    names = await legacy_db.fetch("SELECT name, category_name FROM products ORDER BY id")
    assert [(r["name"], r["category_name"]) for r in names] == [
        ("Boot", "Shoes"),
        ("Sandal", "Shoes"),
        ("Beanie", "Hats"),
    ]
    nullable = await legacy_db.fetchval(
        "SELECT is_nullable FROM information_schema.columns"
        " WHERE table_name = 'products' AND column_name = 'category_id'"
    )
    assert nullable == "YES"


async def test_legacy_migration_on_a_cart_only_database(fresh_db_url):
    # Run against the old cart database alone: no products table there, and that is fine.
    await ensure_database(fresh_db_url)
    conn = await asyncpg.connect(fresh_db_url)
    try:
        await conn.execute(
            "CREATE TABLE users (uid text PRIMARY KEY);"
            "CREATE TABLE carts (id serial PRIMARY KEY, user_id text REFERENCES users (uid));"
            "INSERT INTO users VALUES ('u1'); INSERT INTO carts (user_id) VALUES ('u1');"
        )
        result = run_legacy_script(fresh_db_url)
        assert result.returncode == 0, result.stderr
        assert await foreign_keys(conn) == []
        assert await conn.fetchval("SELECT count(*) FROM carts") == 1
    finally:
        await conn.close()
