"""`GET /api/products`: keyset pages, filters, the `ids` batch, and bad query strings."""

import pytest

PROBLEM = "application/problem+json"


async def pages(catalog, **params):
    """Follow next_cursor to the end; the ids of each page."""
    result, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await catalog.get("/api/products", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        result.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return result


async def test_keyset_pages_cover_everything_once_in_order(catalog, new_category, new_product):
    category = await new_category()
    ids = [(await new_product(category_id=category["id"]))["id"] for _ in range(7)]
    assert await pages(catalog, category_id=category["id"], limit=3) == [ids[0:3], ids[3:6], ids[6:7]]
    assert await pages(catalog, category_id=category["id"], limit=7) == [ids]


async def test_a_product_added_after_the_first_page_shows_on_a_later_one(catalog, new_category, new_product):
    category = await new_category()
    ids = [(await new_product(category_id=category["id"]))["id"] for _ in range(4)]
    first = (await catalog.get("/api/products", params={"category_id": category["id"], "limit": 2})).json()
    assert [item["id"] for item in first["items"]] == ids[:2]
    newest = (await new_product(category_id=category["id"]))["id"]
    rest = await catalog.get(
        "/api/products", params={"category_id": category["id"], "limit": 10, "cursor": first["next_cursor"]}
    )
    assert [item["id"] for item in rest.json()["items"]] == [*ids[2:], newest]


async def test_deleting_a_product_already_seen_does_not_shift_the_next_page(
    catalog, admin, new_category, new_product
):
    # With offsets, deleting an item of page 1 would skip one item of page 2; keysets do not.
    category = await new_category()
    ids = [(await new_product(category_id=category["id"]))["id"] for _ in range(6)]
    first = (await catalog.get("/api/products", params={"category_id": category["id"], "limit": 3})).json()
    assert [item["id"] for item in first["items"]] == ids[:3]
    assert (await catalog.delete(f"/api/products/{ids[0]}", headers=admin)).status_code == 204
    second = await catalog.get(
        "/api/products", params={"category_id": category["id"], "limit": 3, "cursor": first["next_cursor"]}
    )
    assert [item["id"] for item in second.json()["items"]] == ids[3:6]


async def test_filter_by_active(catalog, new_category, new_product):
    category = await new_category()
    active = await new_product(category_id=category["id"])
    inactive = await new_product(category_id=category["id"], is_active=False)
    for flag, expected in (("true", [active["id"]]), ("false", [inactive["id"]])):
        body = (
            await catalog.get("/api/products", params={"category_id": category["id"], "is_active": flag})
        ).json()
        assert [item["id"] for item in body["items"]] == expected


async def test_batch_by_ids_reports_missing(catalog, admin, new_product):
    first, inactive, deleted = await new_product(), await new_product(is_active=False), await new_product()
    assert (await catalog.delete(f"/api/products/{deleted['id']}", headers=admin)).status_code == 204
    asked = [inactive["id"], 987654322, first["id"], deleted["id"], 987654321, first["id"], 987654322]
    response = await catalog.get("/api/products", params={"ids": ",".join(map(str, asked))})
    assert response.status_code == 200, response.text
    body = response.json()
    # An inactive product exists (it is listed); a deleted one names none, as a never-made id.
    assert [(item["id"], item["is_active"]) for item in body["items"]] == sorted(
        [(first["id"], True), (inactive["id"], False)]
    )
    # Each id that names no product, once, in the order asked.
    assert body["missing"] == [987654322, deleted["id"], 987654321]
    assert body["next_cursor"] is None


async def test_plain_listing_has_no_missing_field(catalog):
    assert "missing" not in (await catalog.get("/api/products", params={"limit": 1})).json()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"category_id": "-3"}, "category_id"),
        ({"is_active": "maybe"}, "is_active"),
        ({"q": ""}, "q"),
        ({"q": "x" * 101}, "q"),
        ({"ids": "1,two,3"}, "ids"),
        ({"ids": "1,,2"}, "ids"),
        ({"ids": "0"}, "ids"),
        ({"ids": ",".join(str(i) for i in range(1, 102))}, "ids"),
        ({"ids": "1", "is_active": "true"}, "ids"),
        ({"ids": "1", "limit": "5"}, "ids"),
        ({"ids": "\u00b2"}, "ids"),
        ({"ids": "9" * 5000}, "ids"),
        ({"ids": "99999999999999999999"}, "ids"),
        ({"q": "nul\u0000"}, "q"),
        ({"cursor": "eyJhZnRlciI6MTg0NDY3NDQwNzM3MDk1NTE2MTV9"}, "cursor"),
        ({"sort": "price"}, "sort"),
        ([("limit", "5"), ("limit", "6")], "limit"),
    ],
)
async def test_bad_query_is_a_400_naming_the_parameter(catalog, params, field):
    response = await catalog.get("/api/products", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["field"] == field


async def test_a_hundred_ids_is_the_limit(catalog, new_product):
    products = [await new_product() for _ in range(3)]
    absent = [10**15 + i for i in range(97)]  # ids no test creates
    asked = [absent[0], products[2]["id"], *absent[1:50], products[0]["id"], *absent[50:], products[1]["id"]]
    response = await catalog.get("/api/products", params={"ids": ",".join(map(str, asked))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["id"] for item in body["items"]] == sorted(product["id"] for product in products)
    assert body["missing"] == absent
    assert body["next_cursor"] is None
