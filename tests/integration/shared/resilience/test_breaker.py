"""The shared circuit breaker on a real Redis; two breaker objects stand for two instances."""

import asyncio
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import replace

import anyio
import pytest

from shared.resilience.breaker import BreakerOpen, CircuitBreaker, Outcome
from tests.integration.shared.resilience.breaker_steps import (
    first_probe,
    open_it,
    outcome,
    state,
    wait_for_half_open,
)
from tests.support.breaker_probe import CONFIG
from tests.support.redis_mode import CLUSTER, client, test_keys


@pytest.fixture
async def pair(redis_server):
    """Two breakers for one downstream, each with its own Redis client, as two processes have."""
    clients = [client(redis_server.url) for _ in range(2)]
    keys, name = test_keys(f"t{uuid.uuid4().hex[:8]}"), "catalog"
    yield [CircuitBreaker(each, keys, name, CONFIG) for each in clients], clients[0], keys.breaker(name)
    for each in clients:
        await each.aclose()


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
    # The probe process is a single-server client (its breaker's key names are the same in
    # both modes): on a cluster, that of the master holding the breaker's slot.
    url = redis_server.url
    if CLUSTER:
        node = redis.get_node_from_key(key)
        url = f"redis://{node.host}:{node.port}"

    def take_every_probe_then_die() -> list[str]:
        command = [sys.executable, "-m", "tests.support.breaker_probe", url, prefix, "catalog"]
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


# Leases far longer than a test: a probe's slot is freed only by its report, never by time.
LONG_LEASES = replace(CONFIG, probe_lease_seconds=60)


async def test_probes_that_succeeded_keep_their_slots_until_k_successes_close_it(redis_server):
    clients = [client(redis_server.url) for _ in range(2)]
    keys, name = test_keys(f"t{uuid.uuid4().hex[:8]}"), "catalog"
    first, second = (CircuitBreaker(each, keys, name, LONG_LEASES) for each in clients)
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
        for each in clients:
            await each.aclose()


# A recovery time short enough to wait out several times in one test.
QUICK = replace(CONFIG, recovery_seconds=0.2)


async def test_this_process_counts_the_transitions_it_saw_and_the_probes_it_took(redis_server):
    redis = client(redis_server.url)
    breaker = CircuitBreaker(redis, test_keys(f"t{uuid.uuid4().hex[:8]}"), "catalog", QUICK)
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
        await redis.aclose()


async def test_refused_it_says_which_breaker_and_the_recovery_time_left(redis_server):
    redis = client(redis_server.url)
    breaker = CircuitBreaker(
        redis, test_keys(f"t{uuid.uuid4().hex[:8]}"), "catalog", replace(CONFIG, recovery_seconds=600)
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
        await redis.aclose()


SLOW_2S = replace(CONFIG, slow_call_seconds=2.0)


async def test_a_call_is_slow_from_slow_call_seconds_to_the_millisecond(pair):
    _, redis, key = pair
    breaker = CircuitBreaker(redis, test_keys(key.split(":")[0]), "catalog", SLOW_2S)
    assert await outcome(breaker, Outcome.SUCCESS, duration=1.9996) == "recorded"  # 1999 ms
    assert await outcome(breaker, Outcome.SUCCESS, duration=2.0) == "recorded"
    assert (await state(redis, key))["slow_calls"] == "1"


async def test_calls_are_counted_in_one_second_buckets_and_old_buckets_leave_the_window(pair):
    _, redis, key = pair
    wide = replace(CONFIG, window_seconds=1000, bucket_seconds=1)
    breaker = CircuitBreaker(redis, test_keys(key.split(":")[0]), "catalog", wide)
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
    redis = client(redis_server.url)
    keys = test_keys(f"t{uuid.uuid4().hex[:8]}")
    breakers = [CircuitBreaker(redis, keys, name, QUICK) for name in ("catalog", "payments")]
    try:
        for breaker in breakers:
            await open_it(breaker)
            await wait_for_half_open(breaker)
        for breaker in breakers:
            assert all([(await breaker.acquire()).probe for _ in range(CONFIG.half_open_probes)])
    finally:
        await redis.aclose()


async def test_it_works_with_a_client_that_decodes_responses(redis_server):
    redis = client(redis_server.url, decode_responses=True)
    breaker = CircuitBreaker(redis, test_keys(f"t{uuid.uuid4().hex[:8]}"), "catalog", CONFIG)
    try:
        assert await outcome(breaker, Outcome.IGNORED) == "recorded"
        await open_it(breaker)
        with pytest.raises(BreakerOpen):
            await breaker.acquire()
    finally:
        await redis.aclose()
