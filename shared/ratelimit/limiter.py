"""The rate limiter's decisions: an exact sliding window in Redis, shared by every instance.

Each (subject, route group, window) has a log of the times of admitted requests (a Redis list,
newest first); one Lua script (`rate_limit.lua`, one `EVALSHA`) trims the logs on Redis's
clock, decides for all of a request's limits at once, records the request if admitted, and
returns the numbers the headers need. Redis runs one script at a time, so two instances cannot
both admit the last request, and there is never more than the limit in any window-length span
(no double burst at a window edge, as fixed windows allow). Memory: at most `limit` entries
per key, about 10 bytes each (scripts/bench_ratelimit measures it); a key expires one window
after its last admitted request.

Checks made while a script call is on its way share the next one (group commit, as databases
do for their log): the check of an idle process goes out at once, on its own; checks arriving
while a call is in flight wait for its reply and then go out together, at most MAX_BATCH per
call. So a lone request waits for nothing, under load one round trip decides many requests,
and each decision is the one it would have had alone (the script decides them one after the
other, in arrival order). A call that fails fails the whole queue, and a check that has
waited `max_wait_seconds` (the socket timeout) fails instead of being sent, so a stalled or
slow Redis cannot build a queue that waits many calls: a check waits at most that plus its
own call, as it waited at most for a pooled connection plus its call before batching.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import RedisError

from shared.keys import Keys
from shared.ratelimit.spec import Limit
from shared.storage.lua import load
from shared.storage.slots import grouped, run_grouped

log = logging.getLogger(__name__)

# Requests one script call decides at most: Redis runs nothing else while a script runs, and
# 256 decisions take it about a millisecond.
MAX_BATCH = 256


class Decision(NamedTuple):
    admitted: bool
    limit: int  # of the limit nearest to refusing
    remaining: int
    reset_seconds: int  # until one more request fits under that limit
    retry_after: int  # whole seconds until this request would fit (0 when admitted)
    now_us: int  # Redis's clock when it decided


class _Check(NamedTuple):
    keys: list[str]
    limits: Sequence[Limit]
    reply: asyncio.Future[list[int]]
    queued_at: float  # time.monotonic()


class RateLimiter:
    def __init__(self, redis: Redis, keys: Keys, max_wait_seconds: float = 1.0) -> None:
        """`max_wait_seconds`: the longest a check waits in the queue (the socket timeout, in
        the services) before it counts as Redis failing."""
        self._keys = keys
        self._redis = redis
        self._script = load(redis, __file__, "rate_limit")
        self._max_wait = max_wait_seconds
        # Checks waiting for the call in flight to answer; `_busy` while one is in flight (or
        # about to be sent by `_sender`, the task that sends the queue). They are only changed
        # on the event loop's thread and never across an await, so no two callers can both find
        # the limiter idle and put two calls in flight.
        self._queue: list[_Check] = []
        self._busy = False
        self._sender: asyncio.Task[None] | None = None
        # For /metrics: decisions, and requests Redis could not decide.
        self.admitted = self.refused = self.redis_failures = 0

    async def check(self, subject: str, group: str, limits: Sequence[Limit]) -> Decision:
        """Admit one request of `subject` in `group` if all `limits` allow it. Raises RedisError
        (or OSError) when Redis cannot decide, or not within the wait."""
        keys = [self._keys.rate_limit(subject, group, limit.window_seconds) for limit in limits]
        try:
            raw = await (self._queued(keys, limits) if self._busy else self._alone(keys, limits))
        except (RedisError, OSError):
            self.redis_failures += 1
            raise
        admitted = bool(raw[0])
        if admitted:
            self.admitted += 1
        else:
            self.refused += 1
        # The headers describe the limit closest to refusing; Retry-After the longest wait.
        remaining = [limit.requests - int(raw[2 + 3 * i]) for i, limit in enumerate(limits)]
        nearest = remaining.index(min(remaining))
        retry_us = max(int(raw[4 + 3 * i]) for i in range(len(limits)))
        return Decision(
            admitted=admitted,
            limit=limits[nearest].requests,
            remaining=max(0, remaining[nearest]),
            # Rounded up: after that many seconds one more request fits, never before.
            reset_seconds=math.ceil(int(raw[3 + 3 * nearest]) / 1_000_000),
            # At least 1 when refused, even if Redis's clock stepped back meanwhile.
            retry_after=0 if admitted else max(1, math.ceil(retry_us / 1_000_000)),
            now_us=int(raw[1]),
        )

    async def _alone(self, keys: list[str], limits: Sequence[Limit]) -> list[int]:
        """Nothing in flight: this check goes out now, on its own (no wait at low load);
        checks made meanwhile queue for the next call."""
        self._busy = True
        try:
            replies = await self._call([(keys, limits)])
            return replies[0]
        except (RedisError, OSError) as exc:
            self._fail_queue(exc)  # Redis is failing: the queue need not wait a timeout each
            raise
        finally:  # answered, failed or cancelled: the queue must not be left waiting
            if self._queue:
                self._sender = asyncio.create_task(self._send())
                self._sender.add_done_callback(self._sender_ended)
            else:
                self._busy = False

    def _queued(self, keys: list[str], limits: Sequence[Limit]) -> asyncio.Future[list[int]]:
        reply: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Check(keys, limits, reply, time.monotonic()))
        return reply

    async def _send(self) -> None:
        """Send the queued checks, a batch per call, until none are left (one call in flight)."""
        batch: list[_Check] = []
        try:
            while self._queue:
                self._expire()
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                # A caller that went away before its check was sent is not counted.
                batch = [check for check in batch if not check.reply.done()]
                if batch:
                    await self._decide(batch)
        except BaseException as exc:  # cancelled (the loop is closing): no check may hang
            _fail(batch, RedisError(f"rate limiter stopped: {exc!r}"))
            self._fail_queue(RedisError(f"rate limiter stopped: {exc!r}"))
            raise
        finally:
            self._busy, self._sender = False, None

    def _expire(self) -> None:
        """Fail (a RedisError caused by a TimeoutError) the checks queued longer than
        `max_wait`: a slow Redis would otherwise let a queue fed faster than it drains grow for
        good, each check waiting for every call ahead of it. So a check waits at most that,
        plus its own call. The queue is in arrival order, so they are its front; dropping them
        all before the next batch is taken keeps every call full of checks that can still be
        answered in time."""
        deadline = time.monotonic() - self._max_wait
        expired = 0
        while expired < len(self._queue) and self._queue[expired].queued_at < deadline:
            expired += 1
        if expired:
            stale, self._queue = self._queue[:expired], self._queue[expired:]
            _fail(stale, TimeoutError(f"waited over {self._max_wait} s for Redis"))

    def _sender_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() and self._sender is task:  # before its first step: no clean-up ran
            self._busy, self._sender = False, None
            self._fail_queue(RedisError("rate limiter stopped"))
        if not task.cancelled() and task.exception() is not None:  # a bug; nothing else reads it
            log.error("rate limiter sender failed", exc_info=task.exception())

    async def _decide(self, batch: list[_Check]) -> None:
        try:
            replies = await self._call([(check.keys, check.limits) for check in batch])  # one each
        except Exception as exc:
            _fail(batch, exc)
            if isinstance(exc, (RedisError, OSError)):
                self._fail_queue(exc)  # as in `_alone`
            return
        for check, raw in zip(batch, replies, strict=True):
            if not check.reply.done():  # a caller that went away has a cancelled reply
                check.reply.set_result(raw)

    def _fail_queue(self, exc: Exception) -> None:
        queue, self._queue = self._queue, []
        _fail(queue, exc)

    async def _call(self, checks: list[tuple[list[str], Sequence[Limit]]]) -> list[list[int]]:
        """Script calls deciding `checks` (keys, limits) in order: a reply for each. One call on
        a single Redis; on a cluster one per slot (a subject's keys share one), pipelined."""
        order = range(len(checks))
        groups = grouped(order, self._slot_of(checks)) if self._keys.cluster else {0: list(order)}
        calls = []
        for members in groups.values():
            args: list[int] = [len(members)]
            for i in members:
                limits = checks[i][1]
                args.append(len(limits))
                args += [n for limit in limits for n in (limit.requests, limit.window_seconds * 1_000_000)]
            calls.append(([key for i in members for key in checks[i][0]], args))
        replies: list[list[int]] = [[]] * len(checks)
        for members, answers in zip(
            groups.values(), await run_grouped(self._redis, self._script, calls), strict=True
        ):
            if len(answers) != len(members):
                raise RuntimeError(f"rate_limit.lua answered {len(answers)} of {len(members)} requests")
            for i, answer in zip(members, answers, strict=True):
                replies[i] = answer
        return replies

    @staticmethod
    def _slot_of(checks: list[tuple[list[str], Sequence[Limit]]]) -> Callable[[int], int]:
        return lambda i: key_slot(checks[i][0][0].encode())


def _fail(checks: Sequence[_Check], exc: Exception) -> None:
    for check in checks:
        if not check.reply.done():  # a caller that went away has a cancelled reply
            check.reply.set_exception(_own(exc))


def _own(exc: Exception) -> Exception:
    """An error of its own for each waiter (one instance raised in many tasks would gather
    all their tracebacks); a Redis or network failure stays a RedisError, for the fallbacks."""
    if not isinstance(exc, (RedisError, OSError)):
        return exc  # a bug: let it surface as it is
    error = RedisError(f"rate limiter: {exc}")
    error.__cause__ = exc
    return error
