"""Every SQL statement of the catalog's public reads: product pages, listings, search, categories.

They run on the read pool (`shared.storage.postgres.ReadPool`): plain asyncpg, no transaction,
`$n` parameters, each statement prepared once per connection by asyncpg's statement cache, and
under the pool's statement timeout, so no anonymous request holds a connection for long. The
catalog's writes and their reads are in `repo`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from asyncpg import Record

from app_product.catalog.models import Product
from app_product.catalog.repo import CATEGORY_COLUMNS, PRODUCT_COLUMNS
from shared.storage.postgres import ReadPool

_PRODUCT_FIELDS = len(Product.__struct_fields__)


def product_of(row: Record) -> Product:
    """The product in a row whose first columns are PRODUCT_COLUMNS (a search's score may follow)."""
    return Product(*row[:_PRODUCT_FIELDS])


async def product(reads: ReadPool, product_id: int) -> Record | None:
    rows = await reads.fetch(f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1", product_id)
    return rows[0] if rows else None


async def products(reads: ReadPool, ids: Sequence[int]) -> list[Record]:
    return await reads.fetch(
        f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ANY($1::bigint[]) ORDER BY id", list(ids)
    )


# One statement per filter combination rather than `($2 IS NULL OR category_id = $2)`. A filtered
# page takes its ids from the filter's index alone (index-only: the cost model then sees it
# cheaper than any plan reading the table) and only then its rows by primary key. Otherwise the
# planner may bet on walking the primary key from the cursor and filtering rows, which reads
# the whole table past the cursor when the category's products were added long before.
_FILTERS = {
    (False, False): "",
    (True, False): " AND category_id = $3",
    (False, True): " AND is_active = $3",
    (True, True): " AND category_id = $3 AND is_active = $4",
}
LISTINGS = {
    filters: (
        f"WITH page AS MATERIALIZED (SELECT id FROM products WHERE id > $1{where} ORDER BY id LIMIT $2)"
        f" SELECT {PRODUCT_COLUMNS} FROM page JOIN products USING (id) ORDER BY id"
        if where
        else f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id > $1 ORDER BY id LIMIT $2"
    )
    for filters, where in _FILTERS.items()
}


async def listing(
    reads: ReadPool, *, after: int, limit: int, category_id: int | None, is_active: bool | None
) -> list[Record]:
    """Products with id > `after`, in id order, under the filters: one index range each."""
    args: list[object] = [after, limit]
    args += [value for value in (category_id, is_active) if value is not None]
    return await reads.fetch(LISTINGS[category_id is not None, is_active is not None], *args)


# What the shopper typed, as PostgreSQL's words in the order typed, each with the word the
# search will look for: itself if a product holds it; else, for the last word, the shortest
# word it begins (typing is not over); else the most similar word (a typo). Each branch runs
# only if the ones before it found nothing (Append stops at LIMIT 1).
RESOLVE_WORDS = """
SELECT typed.word AS typed, found.word AS searched
FROM (
    SELECT lexeme COLLATE "C" AS word, positions[1] AS position,
           positions[1] = max(positions[1]) OVER () AS last
    FROM unnest(to_tsvector('simple', $1))
) AS typed
LEFT JOIN LATERAL (
    (SELECT word FROM search_words WHERE word = typed.word)
    UNION ALL
    (SELECT word FROM search_words
     WHERE typed.last AND word > typed.word AND word < typed.word || chr(1114111)
     ORDER BY length(word), word LIMIT 1)
    UNION ALL
    (SELECT word FROM search_words
     WHERE length(typed.word) >= 3 AND word ~ '[[:alpha:]]' AND word % typed.word
     ORDER BY word <-> typed.word, word LIMIT 1)
    LIMIT 1
) AS found ON true
ORDER BY typed.position
"""


async def resolve_words(reads: ReadPool, text: str) -> list[tuple[str, str | None]]:
    """(word typed, word to search for or None) for each word of `text`, in order."""
    return [(row["typed"], row["searched"]) for row in await reads.fetch(RESOLVE_WORDS, text)]


@functools.cache  # one text per shape: asyncpg prepares each once per connection
def search_sql(words: int, category: bool, active: bool, cursor: bool) -> str:
    """The search statement for a number of words and filters (the ranked page of
    `app_product.catalog.search`). Parameters: $1 the words, $2 the text, $3 the page size,
    $4 the window, $5 the depth per word, then the category, the activity and the cursor.

    The products holding every word are a merge join of the words' posting lists (newest
    first, each cut at the depth), and of the filter's ids in the same order, stopped at the
    window. Relevance needs only names: read from a covering index, not the table, and the
    whole row is fetched for the page alone."""
    streams = [
        f'(SELECT product_id FROM product_words WHERE word = ($1::text[])[{i}] COLLATE "C"'
        f" ORDER BY product_id DESC LIMIT $5) AS w{i}"
        for i in range(1, words + 1)
    ]
    n, conditions = 6, []
    for column, wanted in (("category_id", category), ("is_active", active)):
        if wanted:
            conditions.append(f"{column} = ${n}")
            n += 1
    if conditions:
        streams.append(
            f"(SELECT id AS product_id FROM products WHERE {' AND '.join(conditions)}"
            " ORDER BY id DESC) AS filtered"
        )
    after = f" WHERE (score, id) < (${n}::real, ${n + 1}::bigint)" if cursor else ""
    return (
        f"WITH matches AS MATERIALIZED (SELECT w1.product_id AS id FROM {streams[0]}"
        + "".join(f" JOIN {stream} USING (product_id)" for stream in streams[1:])
        + " ORDER BY w1.product_id DESC LIMIT $4),"
        " scored AS (SELECT id, similarity(name, $2) AS score FROM matches JOIN products USING (id)),"
        f" page AS MATERIALIZED (SELECT id, score FROM scored{after} ORDER BY score DESC, id DESC LIMIT $3)"
        f" SELECT {PRODUCT_COLUMNS}, score FROM page JOIN products USING (id) ORDER BY score DESC, id DESC"
    )


async def search(
    reads: ReadPool,
    words: Sequence[str],
    text: str,
    *,
    limit: int,
    window: int,
    depth: int,
    category_id: int | None,
    is_active: bool | None,
    after: tuple[float, int] | None,
) -> list[Record]:
    """A page of the products holding every word, best first (see `search.search`)."""
    args: list[object] = [list(words), text, limit, window, depth]
    args += [value for value in (category_id, is_active) if value is not None]
    args += list(after or ())
    sql = search_sql(len(words), category_id is not None, is_active is not None, after is not None)
    return await reads.fetch(sql, *args)


async def categories(reads: ReadPool, is_active: bool | None) -> list[Record]:
    if is_active is None:
        return await reads.fetch(f"SELECT {CATEGORY_COLUMNS} FROM categories ORDER BY lower(name), id")
    return await reads.fetch(
        f"SELECT {CATEGORY_COLUMNS} FROM categories WHERE is_active = $1 ORDER BY lower(name), id", is_active
    )


async def category(reads: ReadPool, category_id: int) -> Record | None:
    rows = await reads.fetch(f"SELECT {CATEGORY_COLUMNS} FROM categories WHERE id = $1", category_id)
    return rows[0] if rows else None
