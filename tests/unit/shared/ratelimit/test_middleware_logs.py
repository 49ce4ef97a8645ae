"""What the rate-limit middleware logs when Redis fails, with a stand-in limiter (no I/O)."""

import logging

from starlette.responses import PlainTextResponse

from shared.ratelimit.limiter import Decision
from shared.ratelimit.middleware import RateLimitMiddleware
from shared.ratelimit.spec import Limit

SCOPE = {
    "type": "http",
    "method": "GET",
    "path": "/hello",
    "headers": [],
    "query_string": b"",
    "client": ("198.51.100.7", 4000),
}


class Flapping:
    """Fails and answers by turns, as a slow Redis does when checks time out in the queue."""

    def __init__(self) -> None:
        self.calls = 0

    async def check(self, subject, group, limits):
        self.calls += 1
        if self.calls % 2:
            raise TimeoutError("waited over 1.0 s for Redis")
        return Decision(admitted=True, limit=10, remaining=9, reset_seconds=60, retry_after=0, now_us=0)


async def test_a_redis_failing_by_turns_is_logged_once_with_its_recovery(caplog):
    middleware = RateLimitMiddleware(
        PlainTextResponse("hi"), limiter=Flapping(), limits={"reads": [Limit(10, 60)]}
    )
    statuses = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    with caplog.at_level(logging.WARNING, logger="shared.ratelimit.middleware"):
        for _ in range(20):
            await middleware(dict(SCOPE), receive, send)
    assert statuses == [200] * 20  # failing open every other time
    messages = [record.getMessage() for record in caplog.records]
    assert sum("cannot reach Redis" in m for m in messages) == 1, messages
    assert sum("reaches Redis again" in m for m in messages) == 1, messages
