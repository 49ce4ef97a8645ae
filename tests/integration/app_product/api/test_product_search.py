"""`GET /api/products?q=`: word search with typos and unfinished words, in relevance order,
kept in step with every product write, bounded and refused when too short to search."""

import random
import string

import pytest

PROBLEM = "application/problem+json"


@pytest.fixture
def word():
    """`word()`: a word of letters no other product in the shared test catalog holds."""
    return lambda: "".join(random.choices(string.ascii_lowercase, k=12))


async def search(catalog, q, **params):
    response = await catalog.get("/api/products", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return response.json()


async def test_every_word_must_be_held_in_any_case_and_order(catalog, new_product, word):
    colour, kind = word(), word()
    both = await new_product(name=f"{colour.title()} {kind.title()} No. 7")
    await new_product(name=f"{colour} only")
    body = await search(catalog, f"{kind.upper()}  {colour}")
    assert [item["id"] for item in body["items"]] == [both["id"]]
    assert body["searched"] == [kind, colour]


async def test_a_typo_and_an_unfinished_last_word_find_the_catalogs_word(catalog, new_product, word):
    material = word()
    product = await new_product(name=f"{material} boot")
    typo = material[:5] + ("x" if material[5] != "x" else "y") + material[6:]
    assert [item["id"] for item in (await search(catalog, typo))["items"]] == [product["id"]]
    assert (await search(catalog, typo))["searched"] == [material]
    unfinished = await search(catalog, f"boot {material[:7]}")
    assert [item["id"] for item in unfinished["items"]] == [product["id"]]
    assert unfinished["searched"] == ["boot", material]


async def test_a_word_found_nowhere_finds_nothing(catalog, new_product, word):
    await new_product(name=f"{word()} thing")
    body = await search(catalog, "qqqqqqqqqqqqxj zzzzzzzzzzzzzv")
    assert body["items"] == []
    assert body["next_cursor"] is None


async def test_the_closest_name_ranks_first_then_the_newest(catalog, new_product, word):
    tag = word()
    long_name = await new_product(name=f"{tag} boot polish kit with brush and cloth")
    exact = await new_product(name=f"{tag} boot")
    older_twin = await new_product(name=f"{tag} sock")
    newer_twin = await new_product(name=f"{tag} sock")
    ranked = [item["id"] for item in (await search(catalog, f"{tag} boot"))["items"]]
    assert ranked == [exact["id"], long_name["id"]]
    ranked = [item["id"] for item in (await search(catalog, tag))["items"]]
    # The same name scores the same: the newer first.
    assert ranked.index(newer_twin["id"]) == ranked.index(older_twin["id"]) - 1
    assert set(ranked) == {long_name["id"], exact["id"], older_twin["id"], newer_twin["id"]}


async def test_ranked_pages_cover_every_match_once(catalog, new_product, word):
    tag = word()
    made = {(await new_product(name=f"{tag} {'x' * n} item"))["id"] for n in range(1, 8)}
    seen, cursor, pages = [], None, 0
    while True:
        body = await search(catalog, tag, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert (pages, len(seen), set(seen)) == (3, 7, made)


async def test_filters_apply_to_a_search(catalog, new_category, new_product, word):
    tag, category = word(), await new_category()
    inside = await new_product(name=f"{tag} mug", category_id=category["id"])
    await new_product(name=f"{tag} mug")
    retired = await new_product(name=f"{tag} mug", category_id=category["id"], is_active=False)
    body = await search(catalog, tag, category_id=category["id"])
    assert {item["id"] for item in body["items"]} == {inside["id"], retired["id"]}
    body = await search(catalog, tag, category_id=category["id"], is_active="true")
    assert [item["id"] for item in body["items"]] == [inside["id"]]


async def test_renames_and_deletions_reach_the_search_in_their_transaction(catalog, admin, new_product, word):
    before, after = word(), word()
    product = await new_product(name=f"{before} lamp")
    renamed = await catalog.patch(
        f"/api/products/{product['id']}", json={"name": f"{after} lamp", "version": 1}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    assert [item["id"] for item in (await search(catalog, after))["items"]] == [product["id"]]
    assert (await search(catalog, before))["items"] == []  # its word left with the old name
    deleted = await catalog.delete(f"/api/products/{product['id']}", headers=admin)
    assert deleted.status_code == 204
    assert (await search(catalog, after))["items"] == []


@pytest.mark.parametrize("q", ["x", "%%", "_-_", "é"])
async def test_a_text_too_short_to_search_is_a_422_saying_the_minimum(catalog, q):
    response = await catalog.get("/api/products", params={"q": q})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"] == [{"field": "q", "message": "must hold at least 2 letters or digits"}]


async def test_too_many_words_is_a_422(catalog):
    response = await catalog.get("/api/products", params={"q": "a b c d e f g h i"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["message"] == "holds 9 words; at most 8"


async def test_a_listings_cursor_is_refused_by_a_search(catalog, new_product, word):
    await new_product(name="any")
    listing = (await catalog.get("/api/products", params={"limit": 1})).json()
    response = await catalog.get("/api/products", params={"q": word(), "cursor": listing["next_cursor"]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "cursor"
