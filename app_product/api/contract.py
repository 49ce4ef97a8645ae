"""The catalog's HTTP contract: every operation, for its OpenAPI document (GET /openapi.json).
Types are the ones the routes parse and encode; `tests/integration/app_product/api` fails when
a route is not described here."""

from __future__ import annotations

from typing import Any

from app_product.api.schemas import CategoryList, CategoryQuery, ProductPage, ProductQuery, VersionQuery
from app_product.catalog.models import (
    Category,
    CategoryCreate,
    CategoryPatch,
    Product,
    ProductCreate,
    ProductPatch,
)
from shared.http import contract
from shared.http.openapi import Answer, Operation, ProblemDetails, document

ADMIN = "admin"
CACHEABLE = ("ETag", "Cache-Control")
NOT_MODIFIED = Answer(
    304, "Not Modified: the client's If-None-Match names the current representation.", None, CACHEABLE
)
CREATED = ("Location", "ETag")
STALE = Answer(409, "Stale version (the body's `version`), or a duplicate.", ProblemDetails)
IF_MATCH_STALE = Answer(412, "If-Match names a version that is no longer current.", ProblemDetails)
NO_VERSION = Answer(428, "Neither If-Match nor `version` says which version was read.", ProblemDetails)

OPERATIONS = (
    Operation(
        "GET",
        "/api/categories",
        "List categories",
        (Answer(200, "Categories by name.", CategoryList, CACHEABLE), NOT_MODIFIED),
        tag="categories",
        query=CategoryQuery,
        request_headers=("If-None-Match",),
    ),
    Operation(
        "POST",
        "/api/categories",
        "Create a category",
        (
            Answer(201, "Created.", Category, CREATED),
            Answer(409, "A category has that name.", ProblemDetails),
        ),
        tag="categories",
        body=CategoryCreate,
        access=ADMIN,
    ),
    Operation(
        "GET",
        "/api/categories/{id}",
        "Read a category",
        (Answer(200, "The category.", Category, CACHEABLE), NOT_MODIFIED),
        tag="categories",
        request_headers=("If-None-Match",),
    ),
    Operation(
        "PATCH",
        "/api/categories/{id}",
        "Change a category (its products are renamed with it)",
        (Answer(200, "Changed.", Category, ("ETag",)), STALE, IF_MATCH_STALE, NO_VERSION),
        tag="categories",
        body=CategoryPatch,
        access=ADMIN,
        request_headers=("If-Match",),
    ),
    Operation(
        "DELETE",
        "/api/categories/{id}",
        "Delete a category that holds no product",
        (
            Answer(204, "Deleted."),
            Answer(409, "It still holds products, or the version is stale.", ProblemDetails),
            IF_MATCH_STALE,
        ),
        tag="categories",
        query=VersionQuery,
        access=ADMIN,
        request_headers=("If-Match",),
    ),
    Operation(
        "GET",
        "/api/products",
        "List, search or fetch a batch of products",
        (
            Answer(200, "A page (or the batch named by `ids`).", ProductPage, CACHEABLE),
            NOT_MODIFIED,
            Answer(422, "The search text is too short or has too many words.", ProblemDetails),
        ),
        tag="products",
        query=ProductQuery,
        request_headers=("If-None-Match",),
        description=(
            "Without `q`: products in id order after `cursor`, filtered by `category_id` and `is_active`. "
            "With `q`: products whose name holds every word (a typo or an unfinished last word is "
            "replaced by the catalog's word; `searched` says which), best match first; a search "
            "pages through at most its 500 newest matches. With `ids`: those products, and `missing`."
        ),
    ),
    Operation(
        "POST",
        "/api/products",
        "Create a product",
        (Answer(201, "Created.", Product, CREATED), Answer(409, "A product has that SKU.", ProblemDetails)),
        tag="products",
        body=ProductCreate,
        access=ADMIN,
    ),
    Operation(
        "GET",
        "/api/products/{id}",
        "Read a product",
        (Answer(200, "The product.", Product, CACHEABLE), NOT_MODIFIED),
        tag="products",
        request_headers=("If-None-Match",),
    ),
    Operation(
        "PATCH",
        "/api/products/{id}",
        "Change a product",
        (Answer(200, "Changed.", Product, ("ETag",)), STALE, IF_MATCH_STALE, NO_VERSION),
        tag="products",
        body=ProductPatch,
        access=ADMIN,
        request_headers=("If-Match",),
    ),
    Operation(
        "DELETE",
        "/api/products/{id}",
        "Delete a product",
        (Answer(204, "Deleted."), STALE, IF_MATCH_STALE),
        tag="products",
        query=VersionQuery,
        access=ADMIN,
        request_headers=("If-Match",),
    ),
    *contract.OPERATIONS,
)


def openapi() -> dict[str, Any]:
    return document(
        "storefront catalog",
        "1.0.0",
        "Categories and products. Public reads are cacheable (ETag, If-None-Match, Cache-Control); "
        "writes need the admin role and name the version they read (If-Match or `version`).",
        OPERATIONS,
    )
