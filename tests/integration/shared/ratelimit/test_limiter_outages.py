"""The rate limiter when its Redis stalls, slows down or stops: no check waits long, a queue
cannot grow for good, and the middleware fails open (or closed, if so configured). Each test's
Redis is a single server of its own, which it stalls or stops: these run in either mode of the
suite."""

import asyncio
import contextlib
import threading
import time

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from devtools.servers import throwaway_redis
from shared.keys import Keys
from shared.ratelimit.limiter import RateLimiter
from shared.ratelimit.spec import Limit
from tests.integration.shared.ratelimit.test_limiter import serve, small_app
from tests.support.env import as_user

# The environment of an app whose Redis is a single server of the test's own.
SINGLE = {"REDIS_CLUSTER": "false"}


async def test_a_stalled_redis_costs_a_queued_check_at_most_the_wait():
    with throwaway_redis() as server:
        redis = Redis.from_url(server.url, socket_timeout=0.2, socket_connect_timeout=0.2)
        limiter = RateLimiter(redis, Keys("stall"), max_wait_seconds=0.2)
        assert (await limiter.check("user:0", "reads", [Limit(5, 60)])).admitted
        waits: list[float] = []

        async def timed(n: int) -> None:
            started = time.monotonic()
            with contextlib.suppress(RedisError, OSError):
                await limiter.check(f"user:{n}", "reads", [Limit(5, 60)])
            waits.append(time.monotonic() - started)

        with server.stalled():
            # About 5,000 checks a second for a second: far more than one call per timeout
            # can take (256), so a queue drained only batch by batch would grow for good.
            tasks = []
            for burst in range(50):
                tasks += [asyncio.create_task(timed(burst * 50 + i)) for i in range(50)]
                await asyncio.sleep(0.01)  # the arrival rate, not a synchronisation
            await asyncio.gather(*tasks)
        assert max(waits) < 1.0, f"a check waited {max(waits):.2f} s"
        assert (await limiter.check("user:0", "reads", [Limit(5, 60)])).admitted  # answers again
        await redis.aclose()


BUSY_200_MS = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= 200000
"""


async def test_a_slow_redis_cannot_grow_the_queue_for_good():
    with throwaway_redis() as server:
        redis = Redis.from_url(server.url)  # no socket timeout: slow, never failing
        limiter = RateLimiter(redis, Keys("slow"), max_wait_seconds=0.2)
        assert (await limiter.check("user:0", "reads", [Limit(5, 60)])).admitted
        stop = threading.Event()

        def keep_redis_busy() -> None:  # a neighbour's slow scripts: each call waits up to 200 ms
            busy = SyncRedis.from_url(server.url)
            while not stop.is_set():
                busy.eval(BUSY_200_MS, 0)
            busy.close()

        outcomes: list[tuple[float, bool]] = []

        async def timed(n: int) -> None:
            started = time.monotonic()
            try:
                await limiter.check(f"user:{n}", "reads", [Limit(5, 60)])
                timed_out = False
            except RedisError as exc:  # a check that waited too long in the queue
                assert isinstance(exc.__cause__, TimeoutError), exc
                timed_out = True
            outcomes.append((time.monotonic() - started, timed_out))

        thread = threading.Thread(target=keep_redis_busy)
        thread.start()
        try:
            # About 5,000 checks a second for a second, where 256 a call and a call every
            # 200 ms drain 1,280: without the deadline the queue would grow for good.
            tasks = []
            for burst in range(50):
                tasks += [asyncio.create_task(timed(burst * 50 + i)) for i in range(50)]
                await asyncio.sleep(0.01)  # the arrival rate, not a synchronisation
            await asyncio.gather(*tasks)
        finally:
            stop.set()
            thread.join()
        longest = max(wait for wait, _ in outcomes)
        assert longest < 1.2, f"a check waited {longest:.2f} s"
        assert any(timed_out for _, timed_out in outcomes)  # the queue did outgrow the calls
        await redis.aclose()


async def test_redis_down_fails_every_waiting_check():
    with throwaway_redis() as server:
        redis = Redis.from_url(server.url, socket_connect_timeout=0.2, socket_timeout=0.2)
        limiter = RateLimiter(redis, Keys("down"))
        server.stop()
        results = await asyncio.gather(
            *(limiter.check(f"user:{i}", "reads", [Limit(5, 60)]) for i in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, (RedisError, OSError)) for r in results), results
        assert limiter.redis_failures == 20
        server.start()
        assert (await limiter.check("user:0", "reads", [Limit(5, 60)])).admitted
        await redis.aclose()


async def test_redis_down_fails_open_and_limiting_resumes(catalog_db_url):
    with throwaway_redis() as redis:
        app = small_app(
            redis.url, catalog_db_url, REDIS_CONNECT_TIMEOUT="0.2", REDIS_SOCKET_TIMEOUT="0.2", **SINGLE
        )
        alice = as_user("alice-outage")
        async with app.router.lifespan_context(app), await serve(app) as client:
            assert (await client.get("/hello", headers=alice)).status_code == 200
            redis.stop()
            assert [(await client.get("/hello", headers=alice)).status_code for _ in range(5)] == [200] * 5
            redis.start()  # same port; this server kept nothing, so the window starts afresh
            statuses = [(await client.get("/hello", headers=alice)).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]


async def test_redis_down_fails_closed_when_configured(catalog_db_url):
    with throwaway_redis() as redis:
        app = small_app(
            redis.url, catalog_db_url, RATE_LIMIT_FAIL_OPEN="false", REDIS_CONNECT_TIMEOUT="0.2", **SINGLE
        )
        async with app.router.lifespan_context(app), await serve(app) as client:
            redis.stop()
            refused = await client.get("/hello")
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
