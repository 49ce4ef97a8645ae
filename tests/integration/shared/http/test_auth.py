"""Auth failures as a client sees them: 401 with an RFC 6750 challenge, 403 for a missing role."""

import time

import jwt
import pytest

from tests.support.env import TEST_JWT_SECRET, make_token

OTHER_SECRET = "wrong-secret-0123456789abcdefghij"
# {"alg": "none"} header, {"uid": "x", "exp": 2100-01-01, "roles": ["admin"]}, empty signature.
ALG_NONE = (
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1aWQiOiJ4IiwiZXhwIjo0MTAyNDQ0ODAwLCJyb2xlcyI6WyJhZG1pbiJdfQ."
)


async def post_category(catalog, headers, unique):
    return await catalog.post("/api/categories", json={"name": unique("Auth")}, headers=headers)


async def test_no_token_is_401_with_a_plain_challenge(catalog, unique):
    response = await post_category(catalog, {}, unique)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="storefront"'
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "tag:storefront,2026:problem:unauthorized",
        "title": "Authentication required",
        "status": 401,
        "detail": "This endpoint needs a bearer token in the Authorization header.",
        "instance": "/api/categories",
        "request_id": response.headers["x-request-id"],
    }


async def test_other_scheme_counts_as_no_token(catalog, unique):
    response = await post_category(catalog, {"Authorization": "Basic YWRtaW46YWRtaW4="}, unique)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="storefront"'


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Bearer not-a-jwt",
        "Bearer a b",
        f"Bearer {make_token(ttl=-120)}",
        f"Bearer {jwt.encode({'uid': 'x', 'exp': int(time.time()) + 60}, OTHER_SECRET)}",
        f"Bearer {jwt.encode({'uid': 'x'}, TEST_JWT_SECRET)}",
        f"Bearer {ALG_NONE}",
    ],
    ids=["empty", "blank", "garbage", "two-parts", "expired", "wrong-signature", "no-exp", "alg-none"],
)
async def test_invalid_token_is_401_invalid_token(catalog, unique, authorization):
    response = await post_category(catalog, {"Authorization": authorization}, unique)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["status"] == 401


@pytest.mark.parametrize(
    ("authorization", "description"),
    [
        ("Bearer a b", "The Authorization header is not of the form 'Bearer <token>'"),
        ("Bearer not-a-jwt", "The token is malformed"),
        (f"Bearer {make_token(ttl=-120)}", "The token has expired"),
    ],
    ids=["not-bearer-token", "not-a-jwt", "expired"],
)
async def test_invalid_token_challenge_says_what_is_wrong(catalog, unique, authorization, description):
    # An expired token is the one a client can fix by itself (get a new one): it must be told so.
    response = await post_category(catalog, {"Authorization": authorization}, unique)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="storefront", error="invalid_token", error_description="{description}"'
    )
    body = response.json()
    assert (body["type"], body["title"], body["detail"]) == (
        "tag:storefront,2026:problem:unauthorized",
        "Authentication required",
        description,
    )


async def test_user_without_the_admin_role_is_403(catalog, shopper, unique):
    response = await post_category(catalog, shopper, unique)
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="storefront", error="insufficient_scope", scope="admin"'
    )
    assert response.json()["type"] == "tag:storefront,2026:problem:forbidden"
    assert "admin" in response.json()["detail"]


async def test_every_catalog_write_needs_admin(catalog, shopper, new_category, new_product):
    category, product = await new_category(), await new_product()
    writes = [
        ("POST", "/api/categories", {"name": "x"}),
        ("PATCH", f"/api/categories/{category['id']}", {"name": "x", "version": 1}),
        ("DELETE", f"/api/categories/{category['id']}", None),
        ("POST", "/api/products", {"sku": "X1", "name": "x", "price": "1.00"}),
        ("PATCH", f"/api/products/{product['id']}", {"price": "0.01", "version": 1}),
        ("DELETE", f"/api/products/{product['id']}", None),
    ]
    for method, url, body in writes:
        anonymous = await catalog.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, url)
        as_shopper = await catalog.request(method, url, json=body, headers=shopper)
        assert as_shopper.status_code == 403, (method, url)
    assert (await catalog.get(f"/api/products/{product['id']}")).json() == product
    assert (await catalog.get(f"/api/categories/{category['id']}")).json() == category


async def test_reads_need_no_token(catalog, new_product):
    product = await new_product()
    assert (await catalog.get(f"/api/products/{product['id']}")).status_code == 200
    assert (await catalog.get("/api/categories")).status_code == 200
