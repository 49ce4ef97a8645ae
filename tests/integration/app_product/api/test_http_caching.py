"""Public reads are cacheable: an entity tag on every product, category and listing, `304 Not
Modified` for a client that holds the current one, and `Cache-Control: public, max-age=N`."""

import pytest


@pytest.fixture
async def listing_path(new_category, new_product):
    category = await new_category()
    product = await new_product(category_id=category["id"])
    return f"/api/products?category_id={category['id']}", product


@pytest.mark.parametrize("kind", ["product", "listing", "search", "category", "categories"])
async def test_a_public_read_is_cacheable_and_revalidates_to_a_304(catalog, new_category, new_product, kind):
    category = await new_category()
    product = await new_product(category_id=category["id"], name="Cacheable Teapot")
    path = {
        "product": f"/api/products/{product['id']}",
        "listing": f"/api/products?category_id={category['id']}",
        "search": f"/api/products?q=cacheable+teapot&category_id={category['id']}",
        "category": f"/api/categories/{category['id']}",
        "categories": "/api/categories",
    }[kind]
    first = await catalog.get(path)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "public, max-age=5"
    tag = first.headers["etag"]
    again = await catalog.get(path, headers={"If-None-Match": tag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
    assert again.headers["cache-control"] == "public, max-age=5"
    # One of several tags, and the weak form, match too (If-None-Match compares weakly).
    listed = await catalog.get(path, headers={"If-None-Match": f'"other", W/{tag}'})
    assert listed.status_code == 304


async def test_a_change_gives_a_listing_a_new_tag(catalog, admin, listing_path):
    path, product = listing_path
    before = (await catalog.get(path)).headers["etag"]
    patched = await catalog.patch(
        f"/api/products/{product['id']}", json={"price": "11.00", "version": 1}, headers=admin
    )
    assert patched.status_code == 200
    after = await catalog.get(path, headers={"If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["etag"] != before
    assert after.json()["items"][0]["price"] == "11.00"


async def test_a_stale_or_foreign_tag_gets_the_full_answer(catalog, listing_path):
    path, _ = listing_path
    for header in ('"0"', "garbage", '""'):
        response = await catalog.get(path, headers={"If-None-Match": header})
        assert response.status_code == 200
        assert response.json()["items"]


async def test_an_answer_to_a_request_with_credentials_is_not_stored(catalog, admin, listing_path):
    path, _ = listing_path
    response = await catalog.get(path, headers=admin)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_a_refusal_is_not_cacheable(catalog):
    response = await catalog.get("/api/products/987654321")
    assert response.status_code == 404
    assert "public" not in response.headers.get("cache-control", "")
