"""Product search: which products a shopper's text finds, and in what order.

- The text is split into words as PostgreSQL's 'simple' text search does (lower-cased letters
  and digits); it must hold at least `MIN_CHARACTERS` of them, and at most `MAX_WORDS` words.
- A product is found when its name holds every word. A word no product holds is replaced: the
  last one by the shortest word it begins (the shopper may still be typing), any by the most
  similar word (a typo: trigram similarity of at least 0.3). A word with neither finds nothing.
  The page says which words were searched, so a client can show "results for ...".
- Order: relevance, the trigram similarity of the name to the searched words, best first; the
  newest first among equals. The cursor carries (relevance, id).
- Bounds, so every search costs about the same whatever its words: relevance ranks the newest
  `WINDOW` products found (a search pages through at most that many), and each word is looked
  for among the newest `WORD_DEPTH` products that hold it. A shopper reaches older products by
  adding a word or a category, as in any shop's search.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from app_product.catalog import read_repo
from app_product.catalog.models import Product
from shared.errors import FieldError, ValidationFailed
from shared.storage.postgres import ReadPool

MIN_CHARACTERS = 2
MAX_WORDS = 8
WINDOW = 500
WORD_DEPTH = 10_000

_LETTER_OR_DIGIT = re.compile(r"[^\W_]")


class Found(NamedTuple):
    """A page of a search: its products, their scores, whether more follow, the words searched."""

    items: list[Product]
    scores: list[float]
    more: bool
    searched: list[str]


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(f"q: {message}", errors=[FieldError(field="q", message=message)])


async def search(
    reads: ReadPool,
    text: str,
    *,
    limit: int,
    category_id: int | None,
    is_active: bool | None,
    after: tuple[float, int] | None,
) -> Found:
    """The page of products `text` finds (see the module's docstring), after the (score, id)
    of the previous page's last item. A text too short to search is a ValidationFailed."""
    if len(_LETTER_OR_DIGIT.findall(text)) < MIN_CHARACTERS:
        raise _refuse(f"must hold at least {MIN_CHARACTERS} letters or digits")
    resolved = await read_repo.resolve_words(reads, text)
    if len(resolved) > MAX_WORDS:
        raise _refuse(f"holds {len(resolved)} words; at most {MAX_WORDS}")
    searched = list(dict.fromkeys(word for _, word in resolved if word is not None))
    if not resolved or any(word is None for _, word in resolved):
        return Found([], [], False, searched)
    rows = await read_repo.search(
        reads,
        searched,
        " ".join(searched),
        limit=limit + 1,  # one extra row says whether a next page exists
        window=WINDOW,
        depth=WORD_DEPTH,
        category_id=category_id,
        is_active=is_active,
        after=after,
    )
    items = [read_repo.product_of(row) for row in rows[:limit]]
    return Found(items, [row["score"] for row in rows[:limit]], len(rows) > limit, searched)
