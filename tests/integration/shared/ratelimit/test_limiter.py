"""The rate limiter on a real Redis: exact sliding windows and headers (Redis failing it:
test_limiter_outages.py)."""

import asyncio
import uuid

import anyio
import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app_product.settings import CatalogSettings
from devtools.servers import throwaway_redis
from shared.config import load_settings
from shared.http.app import build_app
from shared.keys import Keys
from shared.ratelimit.limiter import RateLimiter
from shared.ratelimit.spec import Limit
from tests.support.env import as_user, service_env
from tests.support.redis_mode import client, test_keys


@pytest.fixture
async def limiter(redis_server):
    redis = client(redis_server.url)
    yield RateLimiter(redis, test_keys(f"t{uuid.uuid4().hex[:8]}"))
    await redis.aclose()


async def test_exactly_the_limit_is_admitted(limiter):
    decisions = [await limiter.check("user:a", "reads", [Limit(5, 60)]) for _ in range(7)]
    assert [d.admitted for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
    assert all(d.limit == 5 for d in decisions)
    assert 58 <= decisions[-1].retry_after <= 60
    assert decisions[0].retry_after == 0


async def test_subjects_and_groups_are_apart(limiter):
    assert (await limiter.check("user:a", "writes", [Limit(1, 60)])).admitted
    assert (await limiter.check("user:b", "writes", [Limit(1, 60)])).admitted
    assert (await limiter.check("user:a", "reads", [Limit(1, 60)])).admitted
    assert not (await limiter.check("user:a", "writes", [Limit(1, 60)])).admitted


async def test_no_window_length_span_ever_holds_more_than_the_limit(limiter):
    # Hammer across several window edges; judge by the limiter's own (Redis) clock.
    limit, window_us = 5, 1_000_000
    admitted = []
    with anyio.move_on_after(2.5):
        while True:
            decision = await limiter.check("user:edge", "reads", [Limit(limit, 1)])
            if decision.admitted:
                admitted.append(decision.now_us)
    assert len(admitted) >= 2 * limit  # the window did slide: more than one window's worth
    for t in admitted:
        assert sum(1 for u in admitted if t - window_us < u <= t) <= limit


async def test_several_limits_are_checked_together(limiter):
    limits = [Limit(2, 1), Limit(3, 60)]
    results = [await limiter.check("user:multi", "writes", limits) for _ in range(3)]
    assert [r.admitted for r in results] == [True, True, False]  # the per-second limit
    assert results[2].retry_after == 1


async def test_retry_after_is_honest(limiter):
    assert (await limiter.check("user:retry", "writes", [Limit(1, 1)])).admitted
    refused = await limiter.check("user:retry", "writes", [Limit(1, 1)])
    assert not refused.admitted and refused.retry_after == 1
    # A client obeying Retry-After to the letter is admitted: waiting is the behaviour tested.
    await anyio.sleep(refused.retry_after)
    assert (await limiter.check("user:retry", "writes", [Limit(1, 1)])).admitted


async def script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_checks_share_script_calls_and_decide_in_order():
    # A server of its own: INFO counts every client's calls, and a first EVALSHA of a script
    # the server has not seen is a NOSCRIPT plus a retry (redis-py loads it), so the count is
    # taken on a server that already has the script and that no other test calls.
    with throwaway_redis() as server:
        async with Redis.from_url(server.url) as redis:
            limiter = RateLimiter(redis, Keys("burst"))
            assert (await limiter.check("user:warm", "reads", [Limit(10, 60)])).admitted  # loads it
            before = await script_calls(redis)
            checks = [limiter.check("user:burst", "reads", [Limit(10, 60)]) for _ in range(30)]
            decisions = await asyncio.gather(*checks)
            # The first goes out at once, alone; the 29 made while it was in flight share the next.
            assert await script_calls(redis) - before == 2
    # Each decision is the one it would have had alone, in the order the checks were made.
    assert [d.admitted for d in decisions] == [True] * 10 + [False] * 20
    assert [d.remaining for d in decisions[:10]] == list(range(9, -1, -1))


async def test_one_batch_mixes_subjects_and_limits(limiter):
    checks = [
        ("user:x", [Limit(2, 60)]),
        ("user:y", [Limit(1, 1), Limit(5, 60)]),
        ("user:x", [Limit(2, 60)]),
        ("user:y", [Limit(1, 1), Limit(5, 60)]),
        ("user:x", [Limit(2, 60)]),
    ]
    decisions = await asyncio.gather(*(limiter.check(subject, "writes", rules) for subject, rules in checks))
    assert [d.admitted for d in decisions] == [True, True, True, False, False]
    assert decisions[3].limit == 1 and decisions[3].retry_after == 1  # the per-second limit refused


async def test_one_batch_over_many_slots_gives_each_check_its_own_decision(redis_server):
    # Cluster key names, whatever the suite's Redis: the batch becomes a script call per slot
    # (on one Redis too, which takes keys of any slot), and each reply must reach its own check.
    redis = client(redis_server.url)
    limiter = RateLimiter(redis, Keys(f"t{uuid.uuid4().hex[:8]}", cluster=True))
    try:
        subjects = [f"user:{i}" for i in range(12)]  # twelve subjects: several slots, masters
        rules = {
            subject: [Limit(1 + i % 3, 60)] + ([Limit(1, 1)] if i % 4 == 0 else [])
            for i, subject in enumerate(subjects)
        }
        checks = [subject for _ in range(4) for subject in subjects]
        decisions = await asyncio.gather(
            *(limiter.check(subject, "reads", rules[subject]) for subject in checks)
        )
        for subject in subjects:
            mine = [
                decision for checked, decision in zip(checks, decisions, strict=True) if checked == subject
            ]
            allowed = min(limit.requests for limit in rules[subject])
            assert [d.admitted for d in mine] == [True] * allowed + [False] * (4 - allowed), subject
            assert [d.remaining for d in mine[:allowed]] == list(range(allowed - 1, -1, -1)), subject
    finally:
        await redis.aclose()


async def test_a_caller_that_goes_away_before_its_check_is_sent_is_not_counted(limiter):
    tasks = [asyncio.create_task(limiter.check("user:gone", "reads", [Limit(3, 60)])) for _ in range(5)]
    await asyncio.sleep(0)  # the first check is in flight, the other four queued behind it
    tasks[1].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert [results[0].admitted] + [d.admitted for d in results[2:]] == [True, True, True, False]


async def test_checks_queued_behind_a_cancelled_call_are_still_sent(limiter):
    tasks = [asyncio.create_task(limiter.check("user:lead", "reads", [Limit(3, 60)])) for _ in range(5)]
    await asyncio.sleep(0)  # one loop turn: each task has made its check; the first is in flight
    tasks[0].cancel()  # the caller whose call is in flight goes away
    with anyio.fail_after(5):  # a queue left waiting would hang here
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    # The four behind it were decided, in order; the cancelled one counts if its command had
    # left before the cancel (a new connection may still have been connecting).
    assert [d.admitted for d in results[1:]] in ([True, True, False, False], [True, True, True, False])


async def test_a_sender_cancelled_before_it_runs_leaves_no_check_waiting(limiter):
    tasks = [asyncio.create_task(limiter.check("user:jam", "reads", [Limit(9, 60)])) for _ in range(4)]
    with anyio.fail_after(5):
        # Until the first call has answered and handed the queue to a sender task: internal
        # state, with nothing to await.
        while limiter._sender is None:  # noqa: ASYNC110
            await asyncio.sleep(0)
    limiter._sender.cancel()  # as the loop's shutdown does to every task
    with anyio.fail_after(5):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0].admitted
    assert all(isinstance(r, RedisError) for r in results[1:]), results
    assert (await limiter.check("user:jam", "reads", [Limit(9, 60)])).admitted  # not jammed


def small_app(redis_url: str, catalog_db_url: str, **extra: str):
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    env = service_env(
        catalog_db_url, redis_url, RATE_LIMIT_READS="3/60", REDIS_KEY_PREFIX=f"t{uuid.uuid4().hex[:8]}"
    )
    settings = load_settings(CatalogSettings, {**env, **extra})
    return build_app("test", settings, [Route("/hello", hello)])


async def serve(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_middleware_headers_and_429(redis_server, catalog_db_url):
    app = small_app(redis_server.url, catalog_db_url)
    alice = as_user("alice-rl")
    async with app.router.lifespan_context(app), await serve(app) as client:
        answers = [await client.get("/hello", headers=alice) for _ in range(3)]
        assert [r.headers["ratelimit-remaining"] for r in answers] == ["2", "1", "0"]
        assert answers[0].headers["ratelimit-limit"] == "3"
        assert 0 < int(answers[0].headers["ratelimit-reset"]) <= 60
        refused = await client.get("/hello", headers=alice)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-remaining"] == "0"
        # Another user, and anonymous callers (keyed by IP), have their own windows.
        assert (await client.get("/hello", headers=as_user("bob-rl"))).status_code == 200
        assert (await client.get("/hello")).status_code == 200
        # Health checks are never limited.
        assert [(await client.get("/health")).status_code for _ in range(5)] == [200] * 5


async def test_forwarded_for_counts_only_through_a_trusted_proxy(redis_server, catalog_db_url):
    for trusted, expected in (("127.0.0.1", [200] * 4), ("", [200, 200, 200, 429])):
        app = small_app(redis_server.url, catalog_db_url, TRUSTED_PROXIES=trusted)
        async with app.router.lifespan_context(app), await serve(app) as client:
            statuses = [
                (await client.get("/hello", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
                for i in range(4)
            ]
        assert statuses == expected, trusted
