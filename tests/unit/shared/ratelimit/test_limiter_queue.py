"""The rate limiter's queue and its replies, with a stand-in for the script call that answers
only when the test says (no I/O): group commit, deadlines, failures and a stopped sender."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import anyio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from shared.keys import Keys
from shared.ratelimit import limiter as limiter_module
from shared.ratelimit.limiter import RateLimiter
from shared.ratelimit.spec import Limit
from tests.support.waits import until

LIMITS = [Limit(5, 60)]


def admitted(used: int = 1) -> list[int]:
    """A reply of rate_limit.lua for one request with one limit, admitted."""
    return [1, 0, used, 60_000_000, 0]


class Script:
    """Stands in for rate_limit.lua: each call waits until the test answers it."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[int], asyncio.Future[list[list[int]]]]] = []

    async def __call__(self, keys: list[str], args: list[int]) -> list[list[int]]:
        reply: asyncio.Future[list[list[int]]] = asyncio.get_running_loop().create_future()
        self.calls.append((keys, args, reply))
        return await reply

    def answer(self, call: int, replies: list[list[int]] | BaseException) -> None:
        reply = self.calls[call][2]
        if isinstance(replies, BaseException):
            reply.set_exception(replies)
        else:
            reply.set_result(replies)

    def batch_size(self, call: int) -> int:
        return self.calls[call][1][0]


def new_limiter(script: Callable, **kwargs) -> RateLimiter:
    limiter = RateLimiter(Redis(), Keys("unit"), **kwargs)  # never connects: the script is replaced
    limiter._script = script
    return limiter


async def until_true(condition: Callable[[], bool]) -> None:
    async def holds() -> bool:
        return condition()

    await until(holds, seconds=5, poll=0.001)


class Caller:
    """Checks one after another, each made (sent or queued) before the next starts."""

    def __init__(self, limiter: RateLimiter, script: Script) -> None:
        self.limiter, self.script = limiter, script

    async def check(self, name: str) -> asyncio.Task:
        calls, queued = len(self.script.calls), len(self.limiter._queue)
        task = asyncio.create_task(self.limiter.check(f"user:{name}", "reads", LIMITS))
        await until_true(lambda: len(self.script.calls) > calls or len(self.limiter._queue) > queued)
        return task


async def outcomes(*tasks: asyncio.Task) -> list:
    with anyio.fail_after(5):  # a check left waiting would hang here
        return await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_decision_reads_every_limit_of_the_reply():
    replies = [
        # admitted; the 10/1 limit has 8 left, the 3/60 limit 1: the headers describe the latter
        [1, 0, 2, 500_000, 0, 2, 60_000_030, 0],
        [1, 0, 3, 400_000, 0, 3, 59_000_000, 0],
        # refused: the longest wait is Retry-After, rounded up
        [0, 0, 3, 300_000, 0, 3, 2_000_001, 2_000_001],
        [0, 0, 3, 300_000, 300_000, 3, 1_000_000, 1_000_000],
    ]

    async def script(keys, args):
        return [replies.pop(0)]

    limiter = new_limiter(script)
    limits = [Limit(10, 1), Limit(3, 60)]
    first, second, refused, again = [await limiter.check("user:a", "reads", limits) for _ in range(4)]
    assert (first.admitted, first.limit, first.remaining, first.reset_seconds) == (True, 3, 1, 61)
    assert first.retry_after == 0
    assert (second.limit, second.remaining, second.reset_seconds) == (3, 0, 59)
    assert (refused.admitted, refused.limit, refused.remaining, refused.retry_after) == (False, 3, 0, 3)
    assert again.retry_after == 1
    assert (limiter.admitted, limiter.refused) == (2, 2)


async def test_a_batch_ends_quietly_and_the_next_check_goes_out_alone(caplog):
    script = Script()
    limiter = new_limiter(script)
    caller = Caller(limiter, script)
    with caplog.at_level(logging.DEBUG):
        first = await caller.check("a")
        queued = [await caller.check(name) for name in "bc"]
        script.answer(0, [admitted()])
        await until_true(lambda: len(script.calls) == 2)
        assert script.batch_size(1) == 2
        script.answer(1, [admitted(2), admitted(3)])
        results = await outcomes(first, *queued)
        assert [r.remaining for r in results] == [4, 3, 2]
        last = await caller.check("d")
        assert len(script.calls) == 3 and script.batch_size(2) == 1  # not queued: nothing in flight
        script.answer(2, [admitted()])
        assert (await outcomes(last))[0].admitted
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_wrong_number_of_replies_fails_its_batch_as_it_is():
    script = Script()
    limiter = new_limiter(script)
    caller = Caller(limiter, script)
    first = await caller.check("a")
    queued = [await caller.check(name) for name in "bc"]
    script.answer(0, [admitted()])
    await until_true(lambda: len(script.calls) == 2)
    script.answer(1, [admitted()])  # one reply for two checks: a bug
    results = await outcomes(first, *queued)
    assert results[0].admitted
    for error in results[1:]:
        assert type(error) is RuntimeError, error
        assert str(error) == "rate_limit.lua answered 1 of 2 requests"


async def test_a_failed_call_fails_its_batch_and_the_queue_behind_it():
    script = Script()
    limiter = new_limiter(script)
    caller = Caller(limiter, script)
    first = await caller.check("a")
    sent = await caller.check("b")
    script.answer(0, [admitted()])
    await until_true(lambda: len(script.calls) == 2)
    behind = await caller.check("c")  # queued while the second call is in flight
    gone = RedisConnectionError("gone")
    script.answer(1, gone)
    results = await outcomes(first, sent, behind)
    for error in results[1:]:
        assert isinstance(error, RedisError) and error is not gone
        assert str(error) == "rate limiter: gone" and error.__cause__ is gone
    assert limiter.redis_failures == 2


async def test_a_sender_cancelled_in_its_call_fails_every_check_and_leaves_no_jam(caplog):
    script = Script()
    limiter = new_limiter(script)
    caller = Caller(limiter, script)
    first = await caller.check("a")
    queued = [await caller.check(name) for name in "bc"]
    script.answer(0, [admitted()])
    await until_true(lambda: len(script.calls) == 2)
    queued.append(await caller.check("d"))  # behind the call in flight
    assert limiter._sender is not None
    with caplog.at_level(logging.DEBUG):
        limiter._sender.cancel()  # as the loop's shutdown does to every task
        results = await outcomes(first, *queued)
        for error in results[1:]:
            assert isinstance(error, RedisError), error
            assert str(error) == "rate limiter: rate limiter stopped: CancelledError()"
        last = await caller.check("e")
        assert len(script.calls) == 3  # sent at once: the limiter is idle again
        script.answer(2, [admitted()])
        assert (await outcomes(last))[0].admitted
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_sender_cancelled_before_it_runs_fails_the_queue_quietly(caplog):
    script = Script()
    limiter = new_limiter(script)
    caller = Caller(limiter, script)
    first = await caller.check("a")
    queued = [await caller.check(name) for name in "bc"]
    with caplog.at_level(logging.DEBUG):
        script.answer(0, [admitted()])
        with anyio.fail_after(5):
            # Until the first call has answered and handed the queue to a sender task: one loop
            # turn at a time, so that the sender has not run yet.
            while limiter._sender is None:  # noqa: ASYNC110
                await asyncio.sleep(0)
        limiter._sender.cancel()
        results = await outcomes(first, *queued)
    assert results[0].admitted
    for error in results[1:]:
        assert isinstance(error, RedisError), error
        assert str(error) == "rate limiter: rate limiter stopped"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


class Bug(BaseException):
    """What no handler in the sender expects."""


async def test_a_sender_that_fails_is_logged(caplog):
    script = Script()
    limiter = new_limiter(script)
    caller = Caller(limiter, script)
    first = await caller.check("a")
    queued = await caller.check("b")
    script.answer(0, [admitted()])
    await until_true(lambda: len(script.calls) == 2)
    with caplog.at_level(logging.ERROR, logger="shared.ratelimit.limiter"):
        script.answer(1, Bug())
        results = await outcomes(first, queued)
        assert str(results[1]) == "rate limiter: rate limiter stopped: Bug()"
        await until_true(lambda: len(caplog.records) > 0)
    assert [r.getMessage() for r in caplog.records] == ["rate limiter sender failed"]
    assert isinstance(caplog.records[0].exc_info[1], Bug)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


async def test_checks_queued_longer_than_the_wait_fail_before_the_call(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(limiter_module, "time", clock)
    script = Script()
    limiter = new_limiter(script)  # waits at most a second, by default
    caller = Caller(limiter, script)

    async def queue_at(*times: float) -> list[asyncio.Task]:
        tasks = []
        for at in times:
            clock.now = at
            tasks.append(await caller.check(f"at-{at}"))
        return tasks

    first = await caller.check("first")
    on_time = await queue_at(0.0, 0.5, 0.6)
    clock.now = 1.0  # the oldest has waited exactly the wait: still sent
    script.answer(0, [admitted()])
    await until_true(lambda: len(script.calls) == 2)
    assert script.batch_size(1) == 3
    late = await queue_at(1.0, 1.5, 1.6)
    clock.now = 2.25  # the first of these is late; the two behind it are not
    script.answer(1, [admitted(), admitted(), admitted()])
    await until_true(lambda: len(script.calls) == 3)
    assert script.batch_size(2) == 2
    last = await queue_at(2.25)
    clock.now = 10.0  # the whole queue is late: nothing is sent
    script.answer(2, [admitted(), admitted()])
    results = await outcomes(first, *on_time, *late, *last)
    assert [isinstance(r, RedisError) for r in results] == [False] * 4 + [True, False, False, True]
    for error in (results[4], results[7]):
        assert str(error) == "rate limiter: waited over 1.0 s for Redis"
        assert isinstance(error.__cause__, TimeoutError)
    assert len(script.calls) == 3


async def test_checks_retried_as_a_stopped_sender_fails_them_are_answered():
    script = Script()
    limiter = new_limiter(script)

    async def retrying(name: str):
        try:
            return await limiter.check(f"user:{name}", "reads", LIMITS)
        except RedisError:  # retried at once, before the stopped sender's clean-up has run
            return await limiter.check(f"user:{name}", "reads", LIMITS)

    tasks = [asyncio.create_task(retrying("a"))]
    await until_true(lambda: len(script.calls) == 1)
    for queued, name in enumerate("bcd", start=1):  # queued behind a, each before the next
        tasks.append(asyncio.create_task(retrying(name)))
        await until_true(lambda: len(limiter._queue) == queued)  # noqa: B023 (awaited at once)
    script.answer(0, [admitted()])
    await until_true(lambda: len(script.calls) == 2)
    limiter._sender.cancel()
    # b's retry goes out alone; c's and d's queue behind it and share the next call.
    await until_true(lambda: len(script.calls) == 3)
    script.answer(2, [admitted()])
    await until_true(lambda: len(script.calls) == 4)
    assert script.batch_size(3) == 2
    script.answer(3, [admitted(), admitted()])
    assert all(result.admitted for result in await outcomes(*tasks))
