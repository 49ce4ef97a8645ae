"""Internal routes of the cart service, for other services and monitoring (service role only).

- `POST /internal/events`: the seed's way in, kept for a service that cannot reach Redis. It
  takes one catalog event (validated as `shared.events.Event`) and appends it to the catalog
  event stream, where the workers apply it like any other: idempotently, newest version wins.
- `GET /internal/health`: what the event pipeline looks like from here: live workers (their
  heartbeat keys), the group's lag and pending count, and how many events are dead.
Both need a token with the `service` role; they count against RATE_LIMIT_INTERNAL.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.auth import require_role
from shared.events import Event, encode, stream_fields
from shared.http_json import json_response, read_json
from shared.keys import CART_GROUP, DEAD_CONSUMER, Keys

SERVICE = "service"


def _redis_and_keys(request: Request) -> tuple[Redis, Keys]:
    redis: Redis = request.app.state.redis
    return redis, Keys(request.app.state.settings.redis_key_prefix)


async def post_event(request: Request) -> Response:
    require_role(request, SERVICE)
    event = await read_json(request, Event)
    redis, keys = _redis_and_keys(request)
    fields = stream_fields(
        str(event.id), event.type, event.aggregate_id, event.version, encode(event).decode()
    )
    stream_id: Any = await redis.xadd(keys.catalog_events(), fields)
    return json_response({"accepted": str(event.id), "stream_id": stream_id.decode()}, status_code=202)


async def pipeline_health(request: Request) -> Response:
    require_role(request, SERVICE)
    redis, keys = _redis_and_keys(request)
    stream = keys.catalog_events()
    workers = [key.decode() async for key in redis.scan_iter(match=keys.worker_heartbeat("*"), count=100)]
    group: dict[str, Any] = {}
    if await redis.exists(stream):
        groups: Any = await redis.xinfo_groups(stream)
        group = next((g for g in groups if g["name"].decode() == CART_GROUP), {})
    dead: Any = (
        await redis.xpending_range(stream, CART_GROUP, "-", "+", 1000, consumername=DEAD_CONSUMER)
        if group
        else []
    )
    return json_response(
        {
            "status": "ok" if workers else "no live worker",
            "workers": len(workers),
            "stream_length": await redis.xlen(stream),
            "lag": group.get("lag"),
            "pending": group.get("pending", 0),
            "dead": len(dead),
        }
    )


routes = [
    Route("/internal/events", post_event, methods=["POST"]),
    Route("/internal/health", pipeline_health, methods=["GET"]),
]
