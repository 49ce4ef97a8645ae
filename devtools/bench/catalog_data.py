"""Products in bulk for the catalog benchmark: generated in PostgreSQL itself (generate_series),
not through the API, so a million load in well under a minute.

Names read like a shop's ("Navy Wool Boot No. 123"): 20 colours, 25 materials and 40 kinds, so
a colour is held by 1 product in 20, a kind by 1 in 40, a number by one; 50 categories, one
product in ten retired. Only for a throwaway server (the loader turns triggers off, as
superuser, and builds the search index in one statement per table).
"""

from __future__ import annotations

import asyncpg

COLOURS = (
    "Red Blue Green Black White Grey Navy Olive Tan Brown Pink Ivory Teal Amber Plum Sand Rust Mint Coral "
    "Slate"
)
MATERIALS = (
    "Wool Cotton Leather Linen Silk Denim Canvas Suede Velvet Nylon Fleece Cashmere Bamboo Hemp Jersey "
    "Tweed Satin Corduroy Mesh Rubber Cork Oak Steel Glass Ceramic"
)
KINDS = (
    "Boot Shoe Sandal Sneaker Jacket Coat Shirt Sweater Scarf Hat Glove Sock Belt Bag Wallet Mug Bowl "
    "Plate Lamp Chair Table Shelf Rug Pillow Blanket Towel Apron Vest Skirt Dress Tie Watch Ring "
    "Bracelet Necklace Backpack Umbrella Bottle Candle Clock"
)
CATEGORIES = 50


def _array(words: str) -> str:
    return "ARRAY[" + ",".join(f"'{word}'" for word in words.split()) + "]"


async def load(database_url: str, count: int) -> None:
    """`count` products in CATEGORIES categories, with their search index, analyzed."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SET maintenance_work_mem = '256MB'")
        # Triggers (the per-row search index upkeep, and its foreign key checks) off for the
        # load: the index is built below in one statement, which is what the triggers keep.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(
            "INSERT INTO categories (name) SELECT 'Category ' || g FROM generate_series(1, $1) g", CATEGORIES
        )
        await conn.execute(
            f"""
            INSERT INTO products (sku, name, price, stock, is_active, category_id, category_name)
            SELECT 'SKU-' || g,
                   ({_array(COLOURS)})[1 + g % 20] || ' ' || ({_array(MATERIALS)})[1 + (g / 20) % 25]
                   || ' ' || ({_array(KINDS)})[1 + (g / 500) % 40] || ' No. ' || g,
                   (g % 10000) / 100.0 + 1, g % 50, g % 10 <> 0, c.id, c.name
            FROM generate_series(1, $1) g
            JOIN categories c ON c.name = 'Category ' || (1 + g % {CATEGORIES})
            ORDER BY g
            """,
            count,
        )
        # Ids follow g (ORDER BY above): a category's products spread over the whole id range.
        await conn.execute("ALTER TABLE product_words DROP CONSTRAINT product_words_pkey")
        await conn.execute("DROP INDEX product_words_product_idx")
        await conn.execute(
            "INSERT INTO product_words (word, product_id)"
            " SELECT unnest(product_search_words(name)), id FROM products"
        )
        await conn.execute("ALTER TABLE product_words ADD PRIMARY KEY (word, product_id)")
        await conn.execute("CREATE INDEX product_words_product_idx ON product_words (product_id)")
        await conn.execute(
            "INSERT INTO search_words (word) SELECT DISTINCT word FROM product_words ON CONFLICT DO NOTHING"
        )
        await conn.execute("SET session_replication_role = DEFAULT")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
