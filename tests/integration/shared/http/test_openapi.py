"""GET /openapi.json: a valid OpenAPI 3.1 document of each service, describing every route."""

from openapi_spec_validator import validate
from starlette.routing import Route


def routes_of(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the app serves, in OpenAPI's path syntax."""
    found = set()
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        path = route.path.replace(":id}", "}")
        methods = route.methods or {
            m.upper() for m in ("get", "post", "patch", "delete") if hasattr(route.endpoint, m)
        }
        found |= {(method, path) for method in methods if method not in ("HEAD", "OPTIONS")}
    return found


def described(document) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


async def assert_describes_every_route(client, app) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert described(document) == routes_of(app)


async def test_the_catalog_serves_a_valid_document_describing_every_route(catalog, catalog_app):
    await assert_describes_every_route(catalog, catalog_app)


async def test_the_cart_serves_a_valid_document_describing_every_route(cart, cart_app):
    await assert_describes_every_route(cart, cart_app)


async def test_operations_name_their_types_headers_statuses_and_security(catalog, cart):
    catalog_doc, cart_doc = (
        (await catalog.get("/openapi.json")).json(),
        (await cart.get("/openapi.json")).json(),
    )
    listing = catalog_doc["paths"]["/api/products"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "limit",
        "cursor",
        "category_id",
        "is_active",
        "q",
        "ids",
        "If-None-Match",
    }
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ProductPage"
    }
    assert set(listing["responses"]["200"]["headers"]) >= {
        "ETag",
        "Cache-Control",
        "X-Request-ID",
        "RateLimit-Remaining",
    }
    assert {"304", "400", "422", "429", "503"} <= set(listing["responses"])
    assert "security" not in listing
    create = catalog_doc["paths"]["/api/products"]["post"]
    assert create["security"] == [{"bearer": []}] and "admin" in create["description"]
    assert set(create["responses"]["201"]["headers"]) >= {"Location", "ETag"}
    assert create["responses"]["422"]["content"]["application/problem+json"]["schema"]["$ref"].endswith(
        "/ProblemDetails"
    )
    add = cart_doc["paths"]["/api/cart/items"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in add["parameters"])
    assert {"200", "401", "409", "422", "429", "503"} <= set(add["responses"])
    assert "Retry-After" in add["responses"]["429"]["headers"]
    assert cart_doc["components"]["securitySchemes"]["bearer"]["bearerFormat"] == "JWT"
