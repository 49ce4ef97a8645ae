"""Steps of the breaker tests: calls with a given outcome, opening a breaker, waiting out its
recovery time (as the breaker asks), and reading its state in Redis."""

import anyio

from shared.resilience.breaker import BreakerOpen, CircuitBreaker, Outcome, Permit
from tests.support.breaker_probe import CONFIG
from tests.support.waits import until


async def outcome(breaker: CircuitBreaker, result: Outcome, duration: float = 0.01) -> str:
    return await breaker.report(await breaker.acquire(), result, duration)


async def open_it(breaker: CircuitBreaker) -> None:
    for _ in range(CONFIG.min_calls):
        await outcome(breaker, Outcome.FAILURE)


async def wait_for_half_open(breaker: CircuitBreaker) -> None:
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


async def first_probe(breaker: CircuitBreaker) -> Permit:
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
