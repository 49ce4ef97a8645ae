"""HTTP routes of the catalog: parse with msgspec, call the service, encode. Nothing else."""

from __future__ import annotations

from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app_product.api.queries import batch_ids, page_size
from app_product.api.schemas import CategoryList, CategoryQuery, ProductPage, ProductQuery, VersionQuery
from app_product.catalog import categories, products
from app_product.catalog.context import Catalog
from app_product.catalog.models import CategoryCreate, CategoryPatch, ProductCreate, ProductPatch
from shared.http.auth import require_role
from shared.http.json_io import json_response, parse_query, read_json
from shared.http.pagination import decode_cursor, next_cursor
from shared.http.routing import database, path_id
from shared.http.versioning import etag, expected_version, required_version

ADMIN = "admin"


def catalog(request: Request) -> Catalog:
    """What writes need (the database and the cache invalidator), wired by app.py."""
    ctx: Catalog = request.app.state.catalog
    return ctx


class Categories(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        query = parse_query(request, CategoryQuery)
        return json_response(
            CategoryList(items=await categories.list_categories(database(request), query.is_active))
        )

    async def post(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, CategoryCreate)
        category = await categories.create_category(database(request), body)
        headers = {"Location": f"/api/categories/{category.id}", "ETag": etag(category.version)}
        return json_response(category, status_code=201, headers=headers)


class CategoryItem(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        category = await categories.get_category(database(request), path_id(request, "category"))
        return json_response(category, headers={"ETag": etag(category.version)})

    async def patch(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, CategoryPatch)
        expected = required_version(request, body.version)
        category_id = path_id(request, "category")
        category = await categories.update_category(catalog(request), category_id, body, expected)
        return json_response(category, headers={"ETag": etag(category.version)})

    async def delete(self, request: Request) -> Response:
        require_role(request, ADMIN)
        query = parse_query(request, VersionQuery)
        expected = expected_version(request, query.version)
        await categories.delete_category(database(request), path_id(request, "category"), expected)
        return Response(status_code=204)


class Products(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        query = parse_query(request, ProductQuery)
        ids = batch_ids(query)
        if ids is not None:
            items, missing = await products.batch(database(request), ids)
            return json_response(ProductPage(items=items, next_cursor=None, missing=missing))
        limit = page_size(query)
        items, more = await products.page(
            database(request),
            after=0 if query.cursor is None else decode_cursor(query.cursor),
            limit=limit,
            category_id=query.category_id,
            is_active=query.is_active,
            q=query.q,
        )
        return json_response(ProductPage(items=items, next_cursor=next_cursor(items, more)))

    async def post(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, ProductCreate)
        product = await products.create_product(catalog(request), body)
        headers = {"Location": f"/api/products/{product.id}", "ETag": etag(product.version)}
        return json_response(product, status_code=201, headers=headers)


class ProductItem(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        product = await products.get_product(database(request), path_id(request, "product"))
        return json_response(product, headers={"ETag": etag(product.version)})

    async def patch(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, ProductPatch)
        expected = required_version(request, body.version)
        product = await products.update_product(catalog(request), path_id(request, "product"), body, expected)
        return json_response(product, headers={"ETag": etag(product.version)})

    async def delete(self, request: Request) -> Response:
        require_role(request, ADMIN)
        query = parse_query(request, VersionQuery)
        expected = expected_version(request, query.version)
        await products.delete_product(catalog(request), path_id(request, "product"), expected)
        return Response(status_code=204)


routes = [
    Route("/api/categories", Categories),
    Route("/api/categories/{id:id}", CategoryItem),
    Route("/api/products", Products),
    Route("/api/products/{id:id}", ProductItem),
]
