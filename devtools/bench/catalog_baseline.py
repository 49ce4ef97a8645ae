"""The baseline of scripts/bench_catalog: minimal Starlette endpoints doing by hand the I/O the
catalog's public reads need (one rate-limit EVALSHA, the same SQL statements on one asyncpg
pool, a msgspec body, an ETag), served by uvicorn exactly as the services are.
Run: python -m devtools.bench.catalog_baseline PORT"""

from __future__ import annotations

import base64
import hashlib
import sys

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app_product.catalog.read_repo import LISTINGS, RESOLVE_WORDS, search_sql
from app_product.catalog.repo import PRODUCT_COLUMNS
from devtools.bench.baseline_app import lifespan, rate_limit, state

HEADERS = {"Cache-Control": "public, max-age=5"}


def _answer(request: Request, body: object, tag: str) -> Response:
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"ETag": tag, **HEADERS})
    headers = {"ETag": tag, **HEADERS}
    return Response(msgspec.json.encode(body), media_type="application/json", headers=headers)


def _page_tag(rows: list[dict[str, object]]) -> str:
    versions = repr([(row["id"], row["version"]) for row in rows]).encode()
    return f'"{hashlib.blake2b(versions, digest_size=12).hexdigest()}"'


def _cursor(raw: str) -> dict[str, float]:
    decoded: dict[str, float] = msgspec.json.decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    return decoded


async def product(request: Request) -> Response:
    await rate_limit(f"ip:{request.client.host if request.client else ''}")
    row = await state["pg"].fetchrow(  # type: ignore[attr-defined]
        f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1", int(request.path_params["id"])
    )
    return _answer(request, dict(row), f'"{row["version"]}"')


async def products(request: Request) -> Response:
    await rate_limit(f"ip:{request.client.host if request.client else ''}")
    params, pg = request.query_params, state["pg"]
    limit, category = int(params.get("limit", 20)), params.get("category_id")
    cursor = _cursor(params["cursor"]) if "cursor" in params else {}
    if "q" in params:
        words = [row["searched"] for row in await pg.fetch(RESOLVE_WORDS, params["q"])]  # type: ignore[attr-defined]
        args: list[object] = [words, " ".join(words), limit + 1, 1000, 10_000]
        args += [int(category)] if category else []
        args += [cursor["score"], int(cursor["after"])] if cursor else []
        sql = search_sql(len(words), category is not None, False, bool(cursor))
    else:
        args = [int(cursor.get("after", 0)), limit + 1]
        args += [int(category)] if category else []
        sql = LISTINGS[category is not None, False]
    rows = [dict(row) for row in await pg.fetch(sql, *args)]  # type: ignore[attr-defined]
    for row in rows:
        row.pop("score", None)
    body = {"items": rows[:limit], "next_cursor": None}
    return _answer(request, body, _page_tag(rows[:limit]))


app = Starlette(
    routes=[Route("/api/products", products), Route("/api/products/{id:int}", product)], lifespan=lifespan
)

if __name__ == "__main__":
    # One process whatever WEB_CONCURRENCY says (uvicorn reads it): that is for the service benchmarked.
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False, workers=1)
