"""HTTP routes of the catalog: parse with msgspec, call the service, encode. Nothing else."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app_product.api.queries import batch_ids, page_size
from app_product.api.schemas import CategoryList, CategoryQuery, ProductPage, ProductQuery, VersionQuery
from app_product.catalog import browse, categories, products, search
from app_product.catalog.context import Catalog
from app_product.catalog.models import CategoryCreate, CategoryPatch, ProductCreate, ProductPatch
from shared.http.auth import require_role
from shared.http.conditional import entity_tag_of, public_json
from shared.http.json_io import json_response, parse_query, read_json
from shared.http.pagination import decode_cursor, decode_ranked_cursor, encode_cursor, next_cursor
from shared.http.routing import Endpoint, database, path_id
from shared.http.versioning import etag, expected_version, required_version
from shared.storage.postgres import ReadPool

ADMIN = "admin"


def catalog(request: Request) -> Catalog:
    """What writes need (the database and the cache invalidator), wired by app.py."""
    ctx: Catalog = request.app.state.catalog
    return ctx


def reads(request: Request) -> ReadPool:
    pool: ReadPool = request.app.state.reads
    return pool


def public(request: Request, content: object, tag: str) -> Response:
    """A public read: cacheable for HTTP_CACHE_MAX_AGE, or a 304 if the client holds it."""
    return public_json(request, content, tag, request.app.state.http_cache_max_age)


def page_tag(page: ProductPage) -> str:
    """A listing's entity tag: its body follows from these (a product's version names its
    whole representation)."""
    return entity_tag_of(
        [(item.id, item.version) for item in page.items] + [page.next_cursor, page.missing, page.searched]
    )


class Categories(Endpoint):
    async def get(self, request: Request) -> Response:
        query = parse_query(request, CategoryQuery)
        found = CategoryList(items=await browse.categories(reads(request), query.is_active))
        return public(request, found, entity_tag_of((c.id, c.version) for c in found.items))

    async def post(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, CategoryCreate)
        category = await categories.create_category(database(request), body)
        headers = {"Location": f"/api/categories/{category.id}", "ETag": etag(category.version)}
        return json_response(category, status_code=201, headers=headers)


class CategoryItem(Endpoint):
    async def get(self, request: Request) -> Response:
        category = await browse.category(reads(request), path_id(request, "category"))
        return public(request, category, etag(category.version))

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


class Products(Endpoint):
    async def get(self, request: Request) -> Response:
        query = parse_query(request, ProductQuery)
        ids = batch_ids(query)
        if ids is not None:
            items, missing = await browse.batch(reads(request), ids)
            found = ProductPage(items=items, next_cursor=None, missing=missing)
        elif query.q is not None:
            found = await _search(request, query, query.q)
        else:
            items, more = await browse.page(
                reads(request),
                after=0 if query.cursor is None else decode_cursor(query.cursor),
                limit=page_size(query),
                category_id=query.category_id,
                is_active=query.is_active,
            )
            found = ProductPage(items=items, next_cursor=next_cursor(items, more))
        return public(request, found, page_tag(found))

    async def post(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, ProductCreate)
        product = await products.create_product(catalog(request), body)
        headers = {"Location": f"/api/products/{product.id}", "ETag": etag(product.version)}
        return json_response(product, status_code=201, headers=headers)


async def _search(request: Request, query: ProductQuery, text: str) -> ProductPage:
    found = await search.search(
        reads(request),
        text,
        limit=page_size(query),
        category_id=query.category_id,
        is_active=query.is_active,
        after=None if query.cursor is None else decode_ranked_cursor(query.cursor),
    )
    cursor = encode_cursor(found.items[-1].id, found.scores[-1]) if found.more else None
    return ProductPage(items=found.items, next_cursor=cursor, searched=found.searched)


class ProductItem(Endpoint):
    async def get(self, request: Request) -> Response:
        product = await browse.product(reads(request), path_id(request, "product"))
        return public(request, product, etag(product.version))

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
