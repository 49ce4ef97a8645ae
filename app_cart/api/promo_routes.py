"""HTTP routes of promo code management (admin role): list, create, read, update, deactivate."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app_cart.api.routes import write
from app_cart.api.schemas import NoQuery, PromoPage, PromoQuery
from app_cart.services import promos
from app_cart.services.models import PromoCreate, PromoPatch
from shared.http.auth import require_role
from shared.http.idempotency import Reply
from shared.http.json_io import json_response, parse_query, read_json
from shared.http.pagination import decode_cursor, next_cursor
from shared.http.routing import Endpoint, database, path_id
from shared.http.versioning import etag, required_version

ADMIN = "admin"


class PromoCodes(Endpoint):
    async def get(self, request: Request) -> Response:
        require_role(request, ADMIN)
        query = parse_query(request, PromoQuery)
        after = 0 if query.cursor is None else decode_cursor(query.cursor)
        items, more = await promos.list_page(database(request), after, query.limit, query.is_active)
        return json_response(PromoPage(items=items, next_cursor=next_cursor(items, more)))

    async def post(self, request: Request) -> Response:
        admin = require_role(request, ADMIN)
        parse_query(request, NoQuery)
        body = await read_json(request, PromoCreate)

        async def create() -> Reply:
            return Reply(201, await promos.create(database(request), body))

        return await write(request, admin, create)


class PromoCodeItem(Endpoint):
    async def get(self, request: Request) -> Response:
        require_role(request, ADMIN)
        promo = await promos.get(database(request), path_id(request, "promo code"))
        return json_response(promo, headers={"ETag": etag(promo.version)})

    async def patch(self, request: Request) -> Response:
        require_role(request, ADMIN)
        body = await read_json(request, PromoPatch)
        expected = required_version(request, body.version)
        promo = await promos.update(database(request), path_id(request, "promo code"), body, expected)
        return json_response(promo, headers={"ETag": etag(promo.version)})

    async def delete(self, request: Request) -> Response:
        require_role(request, ADMIN)
        await promos.deactivate(database(request), path_id(request, "promo code"))
        return Response(status_code=204)


routes = [
    Route("/api/promo-codes", PromoCodes),
    Route("/api/promo-codes/{id:id}", PromoCodeItem),
]
