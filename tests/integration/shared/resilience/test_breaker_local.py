"""The breaker's per-process fallback (Redis unreachable): the same rules as breaker.lua, decided
in one process. Redis is a stand-in whose every script call fails as an unreachable server's
does, and the breaker's clock is a test clock, so windows, recovery times and leases are exact."""

from collections import Counter
from dataclasses import replace

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.keys import Keys
from shared.resilience import breaker as breaker_module
from shared.resilience.breaker import BreakerOpen, CircuitBreaker, Outcome, Permit
from tests.support.breaker_probe import CONFIG

K = CONFIG.half_open_probes


class UnreachableRedis:
    """Registers scripts like redis-py; running one fails as when the server cannot be reached."""

    def register_script(self, source: str):
        async def run(keys, args):
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        return run


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(breaker_module, "time", clock)  # the breaker reads time.monotonic()
    return clock


def local_breaker(config=CONFIG) -> CircuitBreaker:
    return CircuitBreaker(UnreachableRedis(), Keys("t"), "catalog", config)  # type: ignore[arg-type]


async def outcome(breaker, result: Outcome, duration: float = 0.01) -> None:
    permit = await breaker.acquire()
    assert permit.local and not permit.probe
    assert await breaker.report(permit, result, duration) == "local"


async def is_open(breaker) -> bool:
    try:
        await breaker.acquire()
    except BreakerOpen:
        return True
    return False


async def probes(breaker, n: int = K) -> list[Permit]:
    taken = [await breaker.acquire() for _ in range(n)]
    assert all(permit.probe and permit.local for permit in taken)
    return taken


async def test_it_opens_at_exactly_the_failure_rate_once_min_calls_were_made(clock):
    breaker = local_breaker()
    for result in [Outcome.SUCCESS] * 3 + [Outcome.FAILURE]:  # 1 of 4: 25%
        await outcome(breaker, result)
    assert not await is_open(breaker)
    await outcome(breaker, Outcome.FAILURE)  # 2 of 5: 40%
    assert not await is_open(breaker)
    await outcome(breaker, Outcome.FAILURE)  # 3 of 6: 50%
    assert await is_open(breaker)


async def test_it_opens_at_exactly_the_slow_call_rate(clock):
    breaker = local_breaker()
    await outcome(breaker, Outcome.SUCCESS)
    for _ in range(3):
        await outcome(breaker, Outcome.SUCCESS, CONFIG.slow_call_seconds)
    assert not await is_open(breaker)  # 3 slow of 4: 75%
    await outcome(breaker, Outcome.SUCCESS, CONFIG.slow_call_seconds)  # 4 of 5: 80%
    assert await is_open(breaker)


async def test_ignored_outcomes_are_not_calls(clock):
    breaker = local_breaker()
    for result in [Outcome.IGNORED] * 2 + [Outcome.FAILURE] * 2:  # 2 calls: under min_calls
        await outcome(breaker, result)
    assert not await is_open(breaker)
    for _ in range(2):
        await outcome(breaker, Outcome.FAILURE)
    assert await is_open(breaker)


async def test_a_call_window_seconds_old_has_left_the_window(clock):
    breaker = local_breaker()
    for _ in range(CONFIG.min_calls - 1):
        await outcome(breaker, Outcome.FAILURE)
    clock.advance(CONFIG.window_seconds)
    await outcome(breaker, Outcome.FAILURE)  # the only call in the window
    assert not await is_open(breaker)


async def test_transitions_generations_and_counters_without_redis(clock):
    breaker = local_breaker()
    assert (breaker.transitions, breaker.probes_admitted, breaker.fallbacks) == (Counter(), 0, 0)
    first = await breaker.acquire()
    assert first.generation == 0
    await breaker.report(first, Outcome.FAILURE, 0.01)
    for _ in range(CONFIG.min_calls - 1):
        await outcome(breaker, Outcome.FAILURE)
    with pytest.raises(BreakerOpen) as refused:
        await breaker.acquire()
    assert refused.value.retry_after == CONFIG.recovery_seconds
    assert str(refused.value) == "circuit breaker catalog is open; retry in 1.0s"

    clock.advance(CONFIG.recovery_seconds)  # exactly the recovery time: half-open
    taken = await probes(breaker)
    assert {permit.generation for permit in taken} == {2}  # every transition bumps it by one
    await breaker.report(taken[0], Outcome.SUCCESS, 0.01)
    await breaker.report(taken[1], Outcome.FAILURE, 0.01)
    assert await is_open(breaker)

    clock.advance(CONFIG.recovery_seconds)
    taken = await probes(breaker)
    assert {permit.generation for permit in taken} == {4}
    for permit in taken:
        await breaker.report(permit, Outcome.SUCCESS, 0.01)
    calls = [await breaker.acquire() for _ in range(2)]
    assert {(permit.generation, permit.probe) for permit in calls} == {(5, False)}

    # Closed afresh, it opens again after min_calls failures.
    for permit in calls:
        await breaker.report(permit, Outcome.FAILURE, 0.01)
    for _ in range(CONFIG.min_calls - 2):
        await outcome(breaker, Outcome.FAILURE)
    assert await is_open(breaker)

    assert breaker.transitions == Counter(
        {
            ("closed", "open"): 2,
            ("open", "half_open"): 2,
            ("half_open", "open"): 1,
            ("half_open", "closed"): 1,
        }
    )
    assert breaker.probes_admitted == 2 * K
    # Every acquire was a decision made without Redis (reports of local permits ask nothing).
    acquires = 1 + (CONFIG.min_calls - 1) + 1 + K + 1 + K + 2 + (CONFIG.min_calls - 2) + 1
    assert breaker.fallbacks == acquires


async def test_a_probe_slot_is_free_again_exactly_when_its_lease_lapses(clock):
    config = replace(CONFIG, probe_lease_seconds=5)
    breaker = local_breaker(config)
    for _ in range(CONFIG.min_calls):
        await outcome(breaker, Outcome.FAILURE)
    clock.advance(CONFIG.recovery_seconds)
    lapsed = await probes(breaker)
    with pytest.raises(BreakerOpen) as busy:
        await breaker.acquire()
    assert busy.value.retry_after == config.probe_lease_seconds
    clock.advance(config.probe_lease_seconds)
    fresh = await probes(breaker, 1)
    # A probe whose lease lapsed reports late: nothing changes, its success does not count...
    await breaker.report(lapsed[0], Outcome.SUCCESS, 0.01)
    await breaker.report(lapsed[1], Outcome.FAILURE, 0.01)
    # ...so the slots are the fresh probes' alone, and only K of them close it.
    fresh += await probes(breaker, K - 1)
    assert await is_open(breaker)  # busy: K slots taken
    for permit in fresh:
        await breaker.report(permit, Outcome.SUCCESS, 0.01)
    assert not (await breaker.acquire()).probe


async def test_a_probe_reported_twice_counts_once(clock):
    breaker = local_breaker()
    for _ in range(CONFIG.min_calls):
        await outcome(breaker, Outcome.FAILURE)
    clock.advance(CONFIG.recovery_seconds)
    taken = await probes(breaker)
    await breaker.report(taken[0], Outcome.IGNORED, 0.01)  # its slot is free again
    await breaker.report(taken[0], Outcome.SUCCESS, 0.01)  # a second report of it: nothing
    for permit in taken[1:]:
        await breaker.report(permit, Outcome.SUCCESS, 0.01)
    assert (await breaker.acquire()).probe  # still half-open: only K - 1 successes
