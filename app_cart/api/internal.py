"""Internal routes of the cart service, for other services and monitoring (service role only).

- `POST /internal/events`: the seed's way in, kept for a service that cannot reach Redis. It
  takes one catalog event in our envelope (`shared.events.envelope.Event`) or in the seed's
  (`{event_type, payload, timestamp}`, `shared.events.seed`), told apart by shape, and appends it
  to the catalog event stream (its aggregate's partition), where the workers apply it like any
  other: idempotently, newest version wins; retried, then parked, if it fails.
- `GET /internal/health`: what the event pipeline looks like from here: live workers (their
  heartbeat keys), the group's lag and pending count, and how many events are dead, in total
  and per partition of the stream.
Both need a token with the `service` role; they count against RATE_LIMIT_INTERNAL.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app_cart.api.schemas import incoming_event
from shared.events.envelope import encode, stream_fields
from shared.events.partitions import partition_of
from shared.events.publish import StreamAppender
from shared.events.status import pipeline_status
from shared.http.auth import require_role
from shared.http.json_io import json_response, read_json
from shared.keys import CART_GROUP, Keys, keys_for

SERVICE = "service"


def _redis_and_keys(request: Request) -> tuple[Redis, Keys]:
    redis: Redis = request.app.state.redis
    return redis, keys_for(request.app.state.settings)


async def post_event(request: Request) -> Response:
    require_role(request, SERVICE)
    event = incoming_event(await read_json(request, dict[str, Any]))
    redis, keys = _redis_and_keys(request)
    fields = stream_fields(
        str(event.id), event.type, event.aggregate_id, event.version, encode(event).decode()
    )
    partition = partition_of(event.aggregate_id, keys.partitions)
    appender = StreamAppender(redis, keys.catalog_events(partition), keys.stream_epoch(partition))
    stream_id = await appender.append_one(fields)
    return json_response({"accepted": str(event.id), "stream_id": stream_id}, status_code=202)


async def pipeline_health(request: Request) -> Response:
    require_role(request, SERVICE)
    redis, keys = _redis_and_keys(request)
    return json_response(await pipeline_status(redis, keys, CART_GROUP))


routes = [
    Route("/internal/events", post_event, methods=["POST"]),
    Route("/internal/health", pipeline_health, methods=["GET"]),
]
