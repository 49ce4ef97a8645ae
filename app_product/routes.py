"""HTTP routes of the catalog: parse with msgspec, call the service, encode. Nothing else."""

from __future__ import annotations

from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app_product import service
from app_product.schemas import (
    CategoryCreate,
    CategoryPatch,
    CategoryQuery,
    ProductCreate,
    ProductPatch,
    ProductQuery,
    VersionQuery,
)
from shared.auth import require_role
from shared.http_json import json_response, parse_query, read_json
from shared.routing import database, path_id
from shared.versioning import etag, expected_version, required_version

ADMIN = "admin"


def catalog(request: Request) -> service.Catalog:
    """What writes need (the database and the cache invalidator), wired by app.py."""
    ctx: service.Catalog = request.app.state.catalog
    return ctx


class Categories(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        query = parse_query(request, CategoryQuery)
        return json_response(await service.list_categories(database(request), query.is_active))

    async def post(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, CategoryCreate)
        category = await service.create_category(database(request), body)
        headers = {"Location": f"/api/categories/{category.id}", "ETag": etag(category.version)}
        return json_response(category, status_code=201, headers=headers)


class CategoryItem(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        category = await service.get_category(database(request), path_id(request, "category"))
        return json_response(category, headers={"ETag": etag(category.version)})

    async def patch(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, CategoryPatch)
        expected = required_version(request, body.version)
        category_id = path_id(request, "category")
        category = await service.update_category(catalog(request), category_id, body, expected)
        return json_response(category, headers={"ETag": etag(category.version)})

    async def delete(self, request: Request) -> Response:
        require_role(request, ADMIN)
        query = parse_query(request, VersionQuery)
        expected = expected_version(request, query.version)
        await service.delete_category(database(request), path_id(request, "category"), expected)
        return Response(status_code=204)


class Products(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        query = parse_query(request, ProductQuery)
        return json_response(await service.find_products(database(request), query))

    async def post(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, ProductCreate)
        product = await service.create_product(catalog(request), body)
        headers = {"Location": f"/api/products/{product.id}", "ETag": etag(product.version)}
        return json_response(product, status_code=201, headers=headers)


class ProductItem(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        product = await service.get_product(database(request), path_id(request, "product"))
        return json_response(product, headers={"ETag": etag(product.version)})

    async def patch(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, ProductPatch)
        expected = required_version(request, body.version)
        product = await service.update_product(catalog(request), path_id(request, "product"), body, expected)
        return json_response(product, headers={"ETag": etag(product.version)})

    async def delete(self, request: Request) -> Response:
        require_role(request, ADMIN)
        query = parse_query(request, VersionQuery)
        expected = expected_version(request, query.version)
        await service.delete_product(catalog(request), path_id(request, "product"), expected)
        return Response(status_code=204)


routes = [
    Route("/api/categories", Categories),
    Route("/api/categories/{id:id}", CategoryItem),
    Route("/api/products", Products),
    Route("/api/products/{id:id}", ProductItem),
]
