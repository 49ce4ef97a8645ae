"""The circuit breaker when its Redis is down: each process decides alone, by the same rules
(test_breaker_local.py checks them on a test clock), and says so once per outage. The Redis is
a single server of the test's own, stopped: these run in either mode of the suite."""

import logging
import uuid
from dataclasses import replace

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from devtools.servers import throwaway_redis
from shared.keys import Keys
from shared.resilience.breaker import BreakerOpen, CircuitBreaker, Outcome
from tests.integration.shared.resilience.breaker_steps import first_probe, open_it, outcome
from tests.support.breaker_probe import CONFIG
from tests.support.waits import until


async def test_without_redis_each_process_decides_alone():
    with throwaway_redis() as server:
        client = Redis.from_url(server.url, socket_connect_timeout=0.2, socket_timeout=0.2)
        breaker = CircuitBreaker(client, Keys("t"), "catalog", CONFIG)
        server.stop()
        try:
            await open_it(breaker)
            with pytest.raises(BreakerOpen):
                await breaker.acquire()
            assert breaker.fallbacks >= CONFIG.min_calls
        finally:
            await client.aclose()


# Without Redis: a recovery short enough to wait out, leases that never lapse during a test.
LOCAL = replace(CONFIG, recovery_seconds=0.3, probe_lease_seconds=60)


@pytest.fixture(scope="module")
def dead_redis_url():
    """The address of a Redis that was started, then stopped: every call to it fails."""
    with throwaway_redis() as server:
        server.stop()
        yield server.url


@pytest.fixture
async def local_breaker(dead_redis_url):
    client = Redis.from_url(dead_redis_url, socket_connect_timeout=0.2, socket_timeout=0.2)
    yield CircuitBreaker(client, Keys(f"t{uuid.uuid4().hex[:8]}"), "catalog", LOCAL)
    await client.aclose()


async def open_locally(breaker) -> None:
    await open_it(breaker)
    with pytest.raises(BreakerOpen) as refused:
        await breaker.acquire()
    assert 0 < refused.value.retry_after <= LOCAL.recovery_seconds


async def test_without_redis_half_open_admits_exactly_k_probes_and_k_successes_close_it(local_breaker):
    breaker = local_breaker
    await open_locally(breaker)
    probes = [await first_probe(breaker)]
    probes += [await breaker.acquire() for _ in range(CONFIG.half_open_probes - 1)]
    assert all(probe.probe and probe.local for probe in probes)
    with pytest.raises(BreakerOpen):  # probe K+1
        await breaker.acquire()
    for probe in probes[:-1]:
        assert await breaker.report(probe, Outcome.SUCCESS, 0.01) == "local"
        with pytest.raises(BreakerOpen):  # a success keeps its slot taken
            await breaker.acquire()
    await breaker.report(probes[-1], Outcome.SUCCESS, 0.01)
    calls = [await breaker.acquire() for _ in range(CONFIG.half_open_probes + 2)]  # closed
    assert all(call.local and not call.probe for call in calls)
    assert breaker.fallbacks >= CONFIG.min_calls + len(probes) + len(calls)
    # Closed afresh: the failures that opened it are forgotten, it takes min_calls to open again.
    for call in calls[: CONFIG.min_calls - 1]:
        await breaker.report(call, Outcome.FAILURE, 0.01)
    assert not (await breaker.acquire()).probe


async def test_without_redis_a_failed_probe_opens_it_again(local_breaker):
    breaker = local_breaker
    await open_locally(breaker)
    probes = [await first_probe(breaker)]
    probes += [await breaker.acquire() for _ in range(CONFIG.half_open_probes - 1)]
    assert all(probe.probe for probe in probes)
    await breaker.report(probes[0], Outcome.SUCCESS, 0.01)
    await breaker.report(probes[1], Outcome.FAILURE, 0.01)
    with pytest.raises(BreakerOpen) as refused:
        await breaker.acquire()
    assert 0 < refused.value.retry_after <= LOCAL.recovery_seconds  # a whole recovery time again
    await breaker.report(probes[2], Outcome.SUCCESS, 0.01)  # of the half-open that is over
    with pytest.raises(BreakerOpen):
        await breaker.acquire()
    # The next half-open starts with every slot free again.
    again = [await first_probe(breaker)]
    again += [await breaker.acquire() for _ in range(CONFIG.half_open_probes - 1)]
    assert all(probe.probe for probe in again)
    with pytest.raises(BreakerOpen):
        await breaker.acquire()


async def test_without_redis_a_slow_probe_opens_it_again(local_breaker):
    breaker = local_breaker
    await open_locally(breaker)
    probe = await first_probe(breaker)
    await breaker.report(probe, Outcome.SUCCESS, CONFIG.slow_call_seconds)
    with pytest.raises(BreakerOpen) as refused:
        await breaker.acquire()
    assert 0 < refused.value.retry_after <= LOCAL.recovery_seconds


async def test_an_outage_is_logged_once_and_counted_per_decision_and_its_end_is_logged(caplog):
    caplog.set_level(logging.INFO, logger="shared.resilience.breaker")
    with throwaway_redis() as server:
        client = Redis.from_url(server.url, socket_connect_timeout=0.2, socket_timeout=0.2)
        breaker = CircuitBreaker(client, Keys("t"), "catalog", CONFIG)
        try:
            permit = await breaker.acquire()
            assert not permit.local and breaker.fallbacks == 0
            assert caplog.records == []
            server.stop()
            # Redis decided that call: its outcome cannot be recorded without Redis.
            assert await breaker.report(permit, Outcome.SUCCESS, 0.01) == "lost"
            for _ in range(3):
                await outcome(breaker, Outcome.SUCCESS)  # decided per process
            assert breaker.fallbacks == 1 + 3
            server.start()

            async def redis_decides() -> bool:
                return not (await breaker.acquire()).local

            await until(redis_decides, seconds=10)
            await outcome(breaker, Outcome.SUCCESS)
            server.stop()
            await outcome(breaker, Outcome.SUCCESS)  # a new outage
        finally:
            await client.aclose()
    logged = [(record.levelno, record.getMessage()) for record in caplog.records]
    assert [level for level, _ in logged] == [logging.ERROR, logging.WARNING, logging.ERROR]
    assert logged[1][1] == "circuit breaker catalog reaches Redis again"
    for record in (caplog.records[0], caplog.records[2]):  # from report(), then from acquire()
        assert record.getMessage().startswith("circuit breaker catalog cannot reach Redis (")
        assert isinstance(record.args[1], RedisError | OSError)  # the cause is in the log
