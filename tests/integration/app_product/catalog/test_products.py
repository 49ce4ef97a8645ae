"""Products through the HTTP API: writes, validation, versions, and the category rules."""

import asyncio

import pytest

PROBLEM = "application/problem+json"


async def test_create_with_a_category_denormalises_its_name(catalog, new_category, new_product):
    category = await new_category()
    product = await new_product(category_id=category["id"], price="19.9", stock=5)
    assert product["category_id"] == category["id"]
    assert product["category_name"] == category["name"]
    assert product["price"] == "19.90"
    assert (product["stock"], product["version"], product["is_active"]) == (5, 1, True)
    fetched = await catalog.get(f"/api/products/{product['id']}")
    assert fetched.json() == product
    assert fetched.headers["etag"] == '"1"'


async def test_create_without_category(new_product):
    product = await new_product()
    assert product["category_id"] is None and product["category_name"] is None


async def test_unknown_category_is_refused_and_nothing_is_created(catalog, admin, unique):
    name = unique("Ghost")
    response = await catalog.post(
        "/api/products",
        json={"sku": unique("SKU"), "name": name, "price": "1.00", "category_id": 987654321},
        headers=admin,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "category_id"
    assert (await catalog.get("/api/products", params={"q": name})).json()["items"] == []


async def test_duplicate_sku_is_a_conflict(catalog, admin, new_product):
    product = await new_product(name="Original")
    response = await catalog.post(
        "/api/products", json={"sku": product["sku"], "name": "Copy", "price": "2.00"}, headers=admin
    )
    assert response.status_code == 409
    assert product["sku"] in response.json()["detail"]
    assert (await catalog.get(f"/api/products/{product['id']}")).json()["name"] == "Original"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", "19.999"),
        ("price", "-1.00"),
        ("price", 19.99),
        ("price", "1e3"),
        ("price", "NaN"),
        ("price", "Infinity"),
        ("price", "abc"),
        ("price", "12345678901.00"),
        ("price", "19.99\n"),
        ("stock", -1),
        ("stock", 1.5),
        ("stock", "3"),
        ("stock", 10**12),
        ("sku", ""),
        ("sku", "has space"),
        ("sku", "x" * 65),
        ("name", ""),
        ("category_id", 0),
        ("category_id", "1"),
        ("is_active", 1),
        ("description", "d" * 5001),
    ],
)
async def test_invalid_field_is_refused_naming_it(catalog, admin, unique, field, value):
    name = unique("Bad input")
    body = {"sku": unique("BAD"), "name": name, "price": "1.00", field: value}
    response = await catalog.post("/api/products", json=body, headers=admin)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == PROBLEM
    assert problem["errors"][0]["field"] == field
    assert problem["status"] == 422 and problem["title"] and problem["request_id"]
    assert (await catalog.get("/api/products", params={"q": name})).json()["items"] == []


async def test_zero_price_is_allowed(new_product):
    assert (await new_product(price="0"))["price"] == "0.00"


async def test_patch_changes_fields_and_version(catalog, admin, new_product):
    product = await new_product(price="10.00", stock=1)
    response = await catalog.patch(
        f"/api/products/{product['id']}", json={"price": "12.50", "stock": 7, "version": 1}, headers=admin
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["price"], body["stock"], body["version"], body["name"]) == ("12.50", 7, 2, product["name"])
    assert body["updated_at"] > product["updated_at"]
    assert response.headers["etag"] == '"2"'


async def test_patch_moves_between_categories(catalog, admin, new_category, new_product):
    first, second = await new_category(), await new_category()
    product = await new_product(category_id=first["id"])
    url = f"/api/products/{product['id']}"
    moved = await catalog.patch(url, json={"category_id": second["id"], "version": 1}, headers=admin)
    assert (moved.json()["category_id"], moved.json()["category_name"]) == (second["id"], second["name"])
    cleared = await catalog.patch(url, json={"category_id": None, "version": 2}, headers=admin)
    assert (cleared.json()["category_id"], cleared.json()["category_name"]) == (None, None)
    unknown = await catalog.patch(url, json={"category_id": 987654321, "version": 3}, headers=admin)
    assert unknown.status_code == 422
    assert (await catalog.get(url)).json()["version"] == 3


async def test_patch_stale_version_is_a_conflict(catalog, admin, new_product):
    product = await new_product(price="10.00")
    url = f"/api/products/{product['id']}"
    assert (await catalog.patch(url, json={"price": "11.00", "version": 1}, headers=admin)).status_code == 200
    stale = await catalog.patch(url, json={"price": "99.00", "version": 1}, headers=admin)
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2
    assert (await catalog.get(url)).json()["price"] == "11.00"
    via_header = await catalog.patch(url, json={"price": "99.00"}, headers={**admin, "If-Match": '"1"'})
    assert via_header.status_code == 412
    assert (await catalog.patch(url, json={"price": "99.00"}, headers=admin)).status_code == 428


async def test_patch_to_a_duplicate_sku_is_a_conflict(catalog, admin, new_product):
    first, second = await new_product(), await new_product()
    response = await catalog.patch(
        f"/api/products/{second['id']}", json={"sku": first["sku"], "version": 1}, headers=admin
    )
    assert response.status_code == 409
    assert (await catalog.get(f"/api/products/{second['id']}")).json()["sku"] == second["sku"]


async def test_patch_unknown_product_is_404(catalog, admin):
    response = await catalog.patch("/api/products/987654321", json={"stock": 1, "version": 1}, headers=admin)
    assert response.status_code == 404


async def test_concurrent_patches_exactly_one_wins(catalog, admin, new_product):
    product = await new_product(price="10.00")
    url = f"/api/products/{product['id']}"
    prices = [f"{20 + i}.00" for i in range(10)]
    responses = await asyncio.gather(
        *(catalog.patch(url, json={"price": price, "version": 1}, headers=admin) for price in prices)
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    winner = next(r.json() for r in responses if r.status_code == 200)
    final = (await catalog.get(url)).json()
    assert (final["price"], final["version"]) == (winner["price"], 2)


async def test_delete(catalog, admin, new_product):
    product = await new_product()
    url = f"/api/products/{product['id']}"
    assert (await catalog.delete(f"{url}?version=5", headers=admin)).status_code == 409
    assert (await catalog.delete(url, headers={**admin, "If-Match": '"4"'})).status_code == 412
    assert (await catalog.delete(url, headers=admin)).status_code == 204
    assert (await catalog.get(url)).status_code == 404
    assert (await catalog.delete(url, headers=admin)).status_code == 404


async def test_product_in_a_category_blocks_its_deletion_until_moved(
    catalog, admin, new_category, new_product
):
    category = await new_category()
    product = await new_product(category_id=category["id"])
    assert (await catalog.delete(f"/api/categories/{category['id']}", headers=admin)).status_code == 409
    await catalog.patch(
        f"/api/products/{product['id']}", json={"category_id": None, "version": 1}, headers=admin
    )
    assert (await catalog.delete(f"/api/categories/{category['id']}", headers=admin)).status_code == 204


async def test_category_deletion_racing_product_creation_never_orphans(catalog, admin, new_category, unique):
    # Either the delete wins (and the product is refused) or the product does (and the delete
    # is refused); never both. Repeated, because the interleaving differs from run to run.
    for round_ in range(15):
        category = await new_category()
        body = {
            "sku": unique(f"RACE{round_}"),
            "name": "Racer",
            "price": "1.00",
            "category_id": category["id"],
        }
        deleted, created = await asyncio.gather(
            catalog.delete(f"/api/categories/{category['id']}", headers=admin),
            catalog.post("/api/products", json=body, headers=admin),
        )
        assert (deleted.status_code, created.status_code) in {(204, 422), (409, 201)}
        if created.status_code == 201:
            assert (await catalog.get(f"/api/categories/{category['id']}")).status_code == 200


async def test_rename_racing_product_creation_leaves_no_stale_name(catalog, admin, new_category, unique):
    for round_ in range(15):
        category = await new_category()
        new_name = unique(f"Renamed{round_}")
        body = {"sku": unique(f"RN{round_}"), "name": "Racer", "price": "1.00", "category_id": category["id"]}
        renamed, created = await asyncio.gather(
            catalog.patch(
                f"/api/categories/{category['id']}", json={"name": new_name, "version": 1}, headers=admin
            ),
            catalog.post("/api/products", json=body, headers=admin),
        )
        assert (renamed.status_code, created.status_code) == (200, 201)
        product = (await catalog.get(f"/api/products/{created.json()['id']}")).json()
        assert product["category_name"] == new_name
