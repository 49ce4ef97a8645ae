"""The baseline of scripts/bench_cart: a minimal Starlette endpoint doing by hand the I/O a warm
`GET /api/cart` needs (one JWT decode, one EVALSHA, one MGET of 20 keys, one primary-key
query), served by uvicorn exactly as the services are. Run: python -m devtools.bench.baseline_app PORT"""

from __future__ import annotations

import os
import sys
from contextlib import asynccontextmanager

import asyncpg
import jwt
import msgspec
import uvicorn
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.ratelimit import limiter
from shared.storage.lua import source

# The limiter's own script: the baseline decides rate limits the same way, by hand.
LUA = source(limiter.__file__, "rate_limit")
PRODUCT_KEYS = [f"storefront:product:{i}" for i in os.environ.get("BENCH_PRODUCT_IDS", "").split(",") if i]
state: dict[str, object] = {}


@asynccontextmanager
async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
    # The services' connection settings (timeouts, health checks): configuration, not code.
    pool = BlockingConnectionPool.from_url(
        os.environ["REDIS_URL"],
        max_connections=64,
        timeout=1,
        socket_timeout=1,
        socket_connect_timeout=1,
        health_check_interval=30,
    )
    state["redis"] = redis = Redis.from_pool(pool)
    state["sha"] = await redis.script_load(LUA)
    state["pg"] = await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=1, max_size=10, command_timeout=10
    )
    yield
    await state["pg"].close()  # type: ignore[attr-defined]
    await redis.aclose()


async def rate_limit(subject: str) -> None:
    """One rate-limit decision, as the services make it: one EVALSHA of the limiter's script."""
    redis: Redis = state["redis"]  # type: ignore[assignment]
    key = f"bench:baseline:{{{subject}}}:reads:60s"
    # One request with one limit: ARGV is (requests, then per request: limits, limit, window).
    await redis.evalsha(state["sha"], 1, key, 1, 1, 1_000_000, 60_000_000)  # type: ignore[arg-type]


async def cart(request: Request) -> Response:
    token = request.headers["authorization"].partition(" ")[2]
    claims = jwt.decode(token, os.environ["JWT_SECRET"], algorithms=["HS256"], options={"require": ["exp"]})
    await rate_limit(f"user:{claims['uid']}")
    redis: Redis = state["redis"]  # type: ignore[assignment]
    # The cart's own cached products, so the baseline parses the same 20 values.
    values = await redis.mget(PRODUCT_KEYS)
    row = await state["pg"].fetchrow("SELECT id, user_id FROM carts WHERE id = $1", 1)  # type: ignore[attr-defined]
    body = {"items": [len(v or b"") for v in values], "cart": dict(row) if row else None}
    return Response(msgspec.json.encode(body), media_type="application/json")


app = Starlette(routes=[Route("/api/cart", cart)], lifespan=lifespan)

if __name__ == "__main__":
    # One process whatever WEB_CONCURRENCY says (uvicorn reads it): that is for the service benchmarked.
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False, workers=1)
