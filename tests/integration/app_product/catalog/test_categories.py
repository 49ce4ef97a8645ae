"""Categories through the HTTP API, on the real catalog database."""

import asyncio

PROBLEM = "application/problem+json"


async def test_create_then_read(catalog, admin, unique):
    name = unique("Shoes")
    response = await catalog.post(
        "/api/categories", json={"name": name, "description": "On feet"}, headers=admin
    )
    assert response.status_code == 201
    created = response.json()
    assert (created["name"], created["description"], created["is_active"], created["version"]) == (
        name, "On feet", True, 1,
    )  # fmt: skip
    assert response.headers["location"] == f"/api/categories/{created['id']}"
    assert response.headers["etag"] == '"1"'

    fetched = await catalog.get(f"/api/categories/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert fetched.headers["etag"] == '"1"'


async def test_list_is_sorted_by_name_and_filters_active(catalog, new_category, unique):
    zeta = await new_category(name=unique("zeta"))
    alpha = await new_category(name=unique("Alpha"), is_active=False)
    listed = (await catalog.get("/api/categories")).json()["items"]
    names = [item["name"] for item in listed]
    assert names.index(alpha["name"]) < names.index(zeta["name"])
    assert names == sorted(names, key=str.lower)

    active = (await catalog.get("/api/categories", params={"is_active": "true"})).json()["items"]
    assert zeta["id"] in {c["id"] for c in active}
    assert alpha["id"] not in {c["id"] for c in active}


async def test_duplicate_name_is_a_conflict_ignoring_case(catalog, admin, new_category, unique):
    name = unique("Bags")
    await new_category(name=name)
    before = len((await catalog.get("/api/categories")).json()["items"])
    response = await catalog.post("/api/categories", json={"name": name.upper()}, headers=admin)
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert name.upper() in response.json()["detail"]
    assert len((await catalog.get("/api/categories")).json()["items"]) == before


async def test_rename_updates_product_category_names(catalog, admin, new_category, new_product, unique):
    category = await new_category()
    products = [await new_product(category_id=category["id"]) for _ in range(3)]
    new_name = unique("Renamed")
    response = await catalog.patch(
        f"/api/categories/{category['id']}", json={"name": new_name, "version": 1}, headers=admin
    )
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["version"]) == (new_name, 2)
    assert response.headers["etag"] == '"2"'
    for product in products:
        fetched = (await catalog.get(f"/api/products/{product['id']}")).json()
        assert fetched["category_name"] == new_name


async def test_patch_needs_a_version(catalog, admin, new_category):
    category = await new_category()
    response = await catalog.patch(
        f"/api/categories/{category['id']}", json={"is_active": False}, headers=admin
    )
    assert response.status_code == 428
    assert (await catalog.get(f"/api/categories/{category['id']}")).json()["is_active"] is True


async def test_stale_version_is_a_conflict(catalog, admin, new_category):
    category = await new_category()
    url = f"/api/categories/{category['id']}"
    assert (
        await catalog.patch(url, json={"description": "v2", "version": 1}, headers=admin)
    ).status_code == 200
    stale = await catalog.patch(url, json={"description": "lost update", "version": 1}, headers=admin)
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2
    assert (await catalog.get(url)).json()["description"] == "v2"


async def test_if_match_is_honoured(catalog, admin, new_category):
    category = await new_category()
    url = f"/api/categories/{category['id']}"
    ok = await catalog.patch(url, json={"description": "x"}, headers={**admin, "If-Match": '"1"'})
    assert ok.status_code == 200
    stale = await catalog.patch(url, json={"description": "y"}, headers={**admin, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == PROBLEM
    mismatch = await catalog.patch(
        url, json={"description": "y", "version": 3}, headers={**admin, "If-Match": '"2"'}
    )
    assert mismatch.status_code == 400
    for garbage in ("*", "\u00b2", "9" * 5000, '"99999999999"', 'W/"2"', '"1", "2"'):
        response = await catalog.patch(
            url, json={"description": "y"}, headers={**admin, "If-Match": garbage.encode("utf-8")}
        )
        assert response.status_code == 400, garbage
    assert (await catalog.get(url)).json()["description"] == "x"


async def test_patch_without_changes_is_refused(catalog, admin, new_category):
    category = await new_category()
    response = await catalog.patch(f"/api/categories/{category['id']}", json={"version": 1}, headers=admin)
    assert response.status_code == 422


async def test_rename_to_an_existing_name_is_a_conflict(catalog, admin, new_category):
    first, second = await new_category(), await new_category()
    response = await catalog.patch(
        f"/api/categories/{second['id']}", json={"name": first["name"], "version": 1}, headers=admin
    )
    assert response.status_code == 409
    assert (await catalog.get(f"/api/categories/{second['id']}")).json()["name"] == second["name"]


async def test_delete_with_products_is_a_conflict(catalog, admin, new_category, new_product):
    category = await new_category()
    await new_product(category_id=category["id"])
    response = await catalog.delete(f"/api/categories/{category['id']}", headers=admin)
    assert response.status_code == 409
    assert response.json()["product_count"] == 1
    assert (await catalog.get(f"/api/categories/{category['id']}")).status_code == 200


async def test_delete_empty_category(catalog, admin, new_category):
    category = await new_category()
    url = f"/api/categories/{category['id']}"
    assert (await catalog.delete(f"{url}?version=2", headers=admin)).status_code == 409
    assert (await catalog.delete(url, headers={**admin, "If-Match": '"1"'})).status_code == 204
    assert (await catalog.get(url)).status_code == 404
    assert (await catalog.delete(url, headers=admin)).status_code == 404


async def test_unknown_and_out_of_range_ids_are_404(catalog):
    for category_id in (999_999_999, 2**63, 10**30, "9" * 5000):
        response = await catalog.get(f"/api/categories/{category_id}")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


async def test_bad_bodies_are_refused_and_change_nothing(catalog, admin, unique):
    before = (await catalog.get("/api/categories")).json()["items"]
    cases = [
        ({"name": ""}, 422, "name"),
        ({"name": "x" * 101}, 422, "name"),
        ({"name": " padded"}, 422, "name"),
        ({"name": "two\nlines"}, 422, "name"),
        ({"name": "nul\u0000byte"}, 422, "name"),
        ({"name": "carriage\rreturn"}, 422, "name"),
        ({"name": "line\u2028separator"}, 422, "name"),
        ({"name": unique("ok"), "description": "nul\u0000"}, 422, "description"),
        ({"name": 5}, 422, "name"),
        ({"name": unique("ok"), "is_active": "yes"}, 422, "is_active"),
        ({"name": unique("ok"), "colour": "red"}, 422, "colour"),
        ({}, 422, "name"),
        ([], 422, "(body)"),
    ]
    for body, status, field in cases:
        response = await catalog.post("/api/categories", json=body, headers=admin)
        assert response.status_code == status, body
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["field"] == field, body
    malformed = await catalog.post(
        "/api/categories", content=b'{"name": ', headers={**admin, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["type"].endswith("malformed-json")
    form = await catalog.post("/api/categories", data={"name": unique("form")}, headers=admin)
    assert form.status_code == 415
    assert (await catalog.get("/api/categories")).json()["items"] == before


async def test_concurrent_renames_one_wins(catalog, admin, new_category, new_product, unique):
    category = await new_category()
    product = await new_product(category_id=category["id"])
    names = [unique(f"name{i}") for i in range(8)]
    responses = await asyncio.gather(
        *(
            catalog.patch(
                f"/api/categories/{category['id']}", json={"name": name, "version": 1}, headers=admin
            )
            for name in names
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 7
    winner = next(r.json()["name"] for r in responses if r.status_code == 200)
    assert (await catalog.get(f"/api/products/{product['id']}")).json()["category_name"] == winner
