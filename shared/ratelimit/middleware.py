"""The rate-limit middleware: every request of a limited group is decided before it runs.

A refused request gets a 429 problem with `Retry-After`; an admitted one carries the
`RateLimit-*` headers of the limit nearest to refusing. If Redis cannot decide, the request
passes (or, with RATE_LIMIT_FAIL_OPEN=false, gets a 503): an outage is logged once, never a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import problem_response
from shared.ratelimit.groups import Classifier, default_groups
from shared.ratelimit.identity import subject
from shared.ratelimit.limiter import Decision, RateLimiter
from shared.ratelimit.spec import Limit, Network

log = logging.getLogger(__name__)


def _headers(decision: Decision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_seconds),
    }


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        limits: Mapping[str, Sequence[Limit]],
        *,
        classify: Classifier = default_groups,
        trusted_proxies: Sequence[Network] = (),
        fail_open: bool = True,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits
        self.classify = classify
        self.trusted_proxies = trusted_proxies
        self.fail_open = fail_open
        self._failing = False
        self._logged_at: float | None = None  # when "cannot reach" was last logged
        self._announced = False  # whether this outage was

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        group = self.classify(scope) if scope["type"] == "http" else None
        if group is None:
            await self.app(scope, receive, send)
            return
        decision = await self._decide(scope, group)
        if decision is None:  # Redis could not decide
            if self.fail_open:
                await self.app(scope, receive, send)
                return
            await problem_response(
                503,
                "rate-limiter-unavailable",
                "Service unavailable",
                "Try again shortly.",
                headers={"Retry-After": "1"},
            )(scope, receive, send)
            return
        if not decision.admitted:
            response = problem_response(
                429,
                "rate-limited",
                "Too many requests",
                f"Slow down: try again in {decision.retry_after} s.",
                instance=scope["path"],
                headers={**_headers(decision), "Retry-After": str(decision.retry_after)},
            )
            await response(scope, receive, send)
            return

        ours = [(name.lower().encode(), value.encode()) for name, value in _headers(decision).items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Appended, in a new list (it may be the response's own): no route sets these.
                message["headers"] = [*message.get("headers", ()), *ours]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _decide(self, scope: Scope, group: str) -> Decision | None:
        try:
            decision = await self.limiter.check(
                subject(scope, self.trusted_proxies), group, self.limits[group]
            )
        except (RedisError, OSError) as exc:
            # Once per outage, not once per request; and a slow Redis that fails and answers by
            # turns is logged at most once a minute, with its recovery.
            if not self._failing:
                self._failing = True
                now = time.monotonic()
                self._announced = self._logged_at is None or now - self._logged_at > 60
                if self._announced:
                    log.error(
                        "rate limiter cannot reach Redis (%s); %s",
                        exc,
                        "admitting" if self.fail_open else "refusing",
                    )
                    self._logged_at = now
            return None
        if self._failing:
            self._failing = False
            if self._announced:
                log.warning("rate limiter reaches Redis again")
        return decision
