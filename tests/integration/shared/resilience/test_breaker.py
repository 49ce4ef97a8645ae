"""The shared circuit breaker on a real Redis; two breaker objects stand for two instances."""

import asyncio
import logging
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import replace

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from devtools.servers import throwaway_redis
from shared.keys import Keys
from shared.resilience.breaker import BreakerOpen, CircuitBreaker, Outcome, Permit
from tests.support.breaker_probe import CONFIG
from tests.support.waits import until


@pytest.fixture
async def pair(redis_server):
    """Two breakers for one downstream, each with its own Redis client, as two processes have."""
    clients = [Redis.from_url(redis_server.url) for _ in range(2)]
    keys, name = Keys(f"t{uuid.uuid4().hex[:8]}"), "catalog"
    yield [CircuitBreaker(client, keys, name, CONFIG) for client in clients], clients[0], keys.breaker(name)
    for client in clients:
        await client.aclose()


async def outcome(breaker, result: Outcome, duration: float = 0.01) -> str:
    return await breaker.report(await breaker.acquire(), result, duration)


async def open_it(breaker) -> None:
    for _ in range(CONFIG.min_calls):
        await outcome(breaker, Outcome.FAILURE)


async def wait_for_half_open(breaker) -> None:
    """Wait out the recovery time: the wait the breaker itself asks for (Retry-After)."""
    with anyio.fail_after(5):
        while True:
            try:
                permit = await breaker.acquire()
            except BreakerOpen as refused:
                await anyio.sleep(refused.retry_after)
                continue
            await breaker.report(permit, Outcome.IGNORED, 0)  # give the probe slot back
            return


async def state(redis, key) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (await redis.hgetall(key)).items()}


async def test_failures_seen_by_one_instance_open_it_for_the_other(pair):
    (first, second), redis, key = pair
    await open_it(first)
    with pytest.raises(BreakerOpen) as refused:
        await second.acquire()
    assert 0 < refused.value.retry_after <= CONFIG.recovery_seconds
    shown = await state(redis, key)
    assert (shown["state"], shown["generation"]) == ("open", "1")
    assert int(shown["open_until_ms"]) - int(shown["opened_at_ms"]) == 1000


async def test_it_opens_only_at_the_minimum_calls_and_the_failure_rate(pair):
    (first, second), redis, key = pair
    for _ in range(4):
        assert await outcome(first, Outcome.SUCCESS) == "recorded"
    for _ in range(3):  # 3 failures of 7 calls: under 50%
        assert await outcome(first, Outcome.FAILURE) == "recorded"
    shown = await state(redis, key)
    assert (shown["state"], shown["calls"], shown["failures"]) == ("closed", "7", "3")
    assert await outcome(second, Outcome.FAILURE) == "opened"  # 4 of 8: 50%


async def test_too_few_calls_never_open_it(pair):
    (first, second), redis, key = pair
    for _ in range(CONFIG.min_calls - 1):
        assert await outcome(first, Outcome.FAILURE) == "recorded"
    assert (await second.acquire()).probe is False
    assert (await state(redis, key))["state"] == "closed"


async def test_slow_calls_open_it(pair):
    (first, second), _, _ = pair
    for _ in range(CONFIG.min_calls):
        await outcome(first, Outcome.SUCCESS, duration=0.6)
    with pytest.raises(BreakerOpen):
        await second.acquire()


async def test_ignored_outcomes_never_open_or_close_it(pair):
    (first, second), redis, key = pair
    for _ in range(20):
        assert await outcome(first, Outcome.IGNORED) == "recorded"
    assert (await state(redis, key)).get("calls", "0") == "0"
    await open_it(first)
    await wait_for_half_open(second)
    for _ in range(CONFIG.half_open_probes + 2):  # each frees its slot, none counts as a success
        await outcome(second, Outcome.IGNORED)
    assert (await state(redis, key))["state"] == "half_open"


async def test_exactly_k_probes_among_fifty_concurrent_callers(pair):
    (first, second), redis, key = pair
    await open_it(first)
    await wait_for_half_open(second)
    results = await asyncio.gather(*(first.acquire() for _ in range(50)), return_exceptions=True)
    probes = [r for r in results if not isinstance(r, BaseException)]
    assert len(probes) == CONFIG.half_open_probes and all(p.probe for p in probes)
    assert all(isinstance(r, BreakerOpen) for r in results if isinstance(r, BaseException))
    for probe in probes:
        await first.report(probe, Outcome.SUCCESS, 0.01)
    shown = await state(redis, key)
    assert (shown["state"], shown["calls"]) == ("closed", "0")


async def test_a_failed_probe_opens_it_again(pair):
    (first, second), redis, key = pair
    await open_it(first)
    await wait_for_half_open(second)
    assert await outcome(second, Outcome.FAILURE) == "opened"
    assert (await state(redis, key))["state"] == "open"


async def test_an_outcome_from_an_older_generation_changes_nothing(pair):
    (first, second), redis, key = pair
    early = await first.acquire()  # admitted while closed, generation 0
    await open_it(second)
    await wait_for_half_open(second)
    probes = [await second.acquire() for _ in range(CONFIG.half_open_probes)]
    for probe in probes:
        await second.report(probe, Outcome.SUCCESS, 0.01)
    assert (await state(redis, key))["state"] == "closed"
    assert await first.report(early, Outcome.FAILURE, 0.01) == "stale"
    shown = await state(redis, key)
    assert (shown["state"], shown["failures"]) == ("closed", "0")


async def test_a_probe_whose_process_died_frees_its_slot_when_its_lease_lapses(pair, redis_server):
    (first, second), redis, key = pair
    await open_it(first)
    await wait_for_half_open(second)
    prefix = key.split(":")[0]

    def take_every_probe_then_die() -> list[str]:
        command = [sys.executable, "-m", "tests.support.breaker_probe", redis_server.url, prefix, "catalog"]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
            assert process.stdout is not None
            roles = process.stdout.readline().split()
            process.kill()  # SIGKILL: its probes never report
            return roles

    roles = await anyio.to_thread.run_sync(take_every_probe_then_die)
    assert roles == ["probe"] * CONFIG.half_open_probes + ["refused"]
    with pytest.raises(BreakerOpen) as busy:
        await second.acquire()  # every slot is held by a dead process's leases
    assert 0 < busy.value.retry_after <= CONFIG.probe_lease_seconds
    await anyio.sleep(busy.value.retry_after)  # the lease time is what is under test
    assert (await second.acquire()).probe
    assert (await state(redis, key))["state"] == "half_open"


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


# Leases far longer than a test: a probe's slot is freed only by its report, never by time.
LONG_LEASES = replace(CONFIG, probe_lease_seconds=60)


async def test_probes_that_succeeded_keep_their_slots_until_k_successes_close_it(redis_server):
    clients = [Redis.from_url(redis_server.url) for _ in range(2)]
    keys, name = Keys(f"t{uuid.uuid4().hex[:8]}"), "catalog"
    first, second = (CircuitBreaker(client, keys, name, LONG_LEASES) for client in clients)
    key = keys.breaker(name)
    try:
        await open_it(first)
        await wait_for_half_open(second)
        probes = [await first.acquire() for _ in range(CONFIG.half_open_probes)]
        assert all(probe.probe for probe in probes)
        for done, probe in enumerate(probes[:-1], start=1):
            assert await first.report(probe, Outcome.SUCCESS, 0.01) == "recorded"
            shown = await state(clients[0], key)
            assert (shown["state"], shown["probe_successes"]) == ("half_open", str(done))
            for breaker in (first, second):  # a success holds its slot: no further probe
                with pytest.raises(BreakerOpen) as busy:
                    await breaker.acquire()
                assert 0 < busy.value.retry_after <= LONG_LEASES.probe_lease_seconds
        assert await first.report(probes[-1], Outcome.SUCCESS, 0.01) == "closed"
        assert (await state(clients[0], key))["state"] == "closed"
        calls = [await second.acquire() for _ in range(CONFIG.half_open_probes + 2)]
        assert not any(call.probe for call in calls)
    finally:
        for client in clients:
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


async def first_probe(breaker) -> Permit:
    """Wait out the recovery time; the first call admitted then (a probe)."""
    admitted: list[Permit] = []

    async def admits() -> bool:
        try:
            admitted.append(await breaker.acquire())
        except BreakerOpen:
            return False
        return True

    await until(admits, seconds=5, poll=0.02)
    return admitted[0]


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


# A recovery time short enough to wait out several times in one test.
QUICK = replace(CONFIG, recovery_seconds=0.2)


async def test_this_process_counts_the_transitions_it_saw_and_the_probes_it_took(redis_server):
    client = Redis.from_url(redis_server.url)
    breaker = CircuitBreaker(client, Keys(f"t{uuid.uuid4().hex[:8]}"), "catalog", QUICK)
    try:
        assert (breaker.transitions, breaker.probes_admitted) == (Counter(), 0)
        await open_it(breaker)
        assert await breaker.report(await first_probe(breaker), Outcome.FAILURE, 0.01) == "opened"
        for _ in range(2):  # twice: half-open, K successful probes close it
            probes = [await first_probe(breaker)]
            probes += [await breaker.acquire() for _ in range(CONFIG.half_open_probes - 1)]
            verdicts = [await breaker.report(probe, Outcome.SUCCESS, 0.01) for probe in probes]
            assert verdicts == ["recorded"] * (CONFIG.half_open_probes - 1) + ["closed"]
            assert not (await breaker.acquire()).probe
            await open_it(breaker)
        assert breaker.transitions == Counter(
            {
                ("closed", "open"): 3,
                ("open", "half_open"): 3,
                ("half_open", "open"): 1,
                ("half_open", "closed"): 2,
            }
        )
        assert breaker.probes_admitted == 1 + 2 * CONFIG.half_open_probes
    finally:
        await client.aclose()


async def test_refused_it_says_which_breaker_and_the_recovery_time_left(redis_server):
    client = Redis.from_url(redis_server.url)
    breaker = CircuitBreaker(
        client, Keys(f"t{uuid.uuid4().hex[:8]}"), "catalog", replace(CONFIG, recovery_seconds=600)
    )
    try:
        await open_it(breaker)
        with pytest.raises(BreakerOpen) as refused:
            await breaker.acquire()
        assert 599.5 < refused.value.retry_after <= 600  # in milliseconds from Redis, as seconds
        assert (
            str(refused.value)
            == f"circuit breaker catalog is open; retry in {refused.value.retry_after:.1f}s"
        )
    finally:
        await client.aclose()


SLOW_2S = replace(CONFIG, slow_call_seconds=2.0)


async def test_a_call_is_slow_from_slow_call_seconds_to_the_millisecond(pair):
    _, redis, key = pair
    breaker = CircuitBreaker(redis, Keys(key.split(":")[0]), "catalog", SLOW_2S)
    assert await outcome(breaker, Outcome.SUCCESS, duration=1.9996) == "recorded"  # 1999 ms
    assert await outcome(breaker, Outcome.SUCCESS, duration=2.0) == "recorded"
    assert (await state(redis, key))["slow_calls"] == "1"


async def test_calls_are_counted_in_one_second_buckets_and_old_buckets_leave_the_window(pair):
    _, redis, key = pair
    wide = replace(CONFIG, window_seconds=1000, bucket_seconds=1)
    breaker = CircuitBreaker(redis, Keys(key.split(":")[0]), "catalog", wide)
    seconds = int((await redis.time())[0])
    stale = f"b:{seconds - 1000}"  # the bucket just out of a 1000-bucket window
    await redis.hset(key, mapping={f"{stale}:calls": 5, f"{stale}:failures": 5})
    assert await outcome(breaker, Outcome.FAILURE) == "recorded"
    shown = await state(redis, key)
    assert (shown["calls"], shown["failures"]) == ("1", "1")
    buckets = {field for field in shown if field.startswith("b:")}
    after = int((await redis.time())[0])
    assert buckets in ({f"b:{second}:calls", f"b:{second}:failures"} for second in range(seconds, after + 1))


async def test_breakers_of_two_downstreams_have_their_own_probe_slots(redis_server):
    client = Redis.from_url(redis_server.url)
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    breakers = [CircuitBreaker(client, keys, name, QUICK) for name in ("catalog", "payments")]
    try:
        for breaker in breakers:
            await open_it(breaker)
            await wait_for_half_open(breaker)
        for breaker in breakers:
            assert all([(await breaker.acquire()).probe for _ in range(CONFIG.half_open_probes)])
    finally:
        await client.aclose()


async def test_it_works_with_a_client_that_decodes_responses(redis_server):
    client = Redis.from_url(redis_server.url, decode_responses=True)
    breaker = CircuitBreaker(client, Keys(f"t{uuid.uuid4().hex[:8]}"), "catalog", CONFIG)
    try:
        assert await outcome(breaker, Outcome.IGNORED) == "recorded"
        await open_it(breaker)
        with pytest.raises(BreakerOpen):
            await breaker.acquire()
    finally:
        await client.aclose()


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
