"""Circuit breakers whose state every instance shares, in Redis (`breaker.lua` decides).

Model (Resilience4j's): closed, a call's outcome is a success, a failure (timeout, connection
error, 5xx) or ignored (4xx: the downstream works). The breaker opens when, over a time-bucketed
window, at least `min_calls` calls were made and the failure or slow-call rate reaches its
threshold. Open, it refuses calls until `recovery_seconds` have passed, saying how long is left
(-> Retry-After). Then half-open: exactly `half_open_probes` probe calls are admitted across all
instances, each holding a lease (a probe whose process dies frees its slot when the lease
lapses); one failed or slow probe opens it again, K successful ones close it. Every transition
bumps a generation, and an outcome reported for an older generation changes nothing.

If Redis cannot be reached the breaker decides per process (same rules, local state): logged
once per outage and counted in `fallbacks`. `redis-cli HGETALL storefront:breaker:{name}` shows
the shared state.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.keys import Keys
from shared.storage.lua import load

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BreakerConfig:
    window_seconds: float = 10.0
    bucket_seconds: float = 1.0
    min_calls: int = 10
    failure_rate: float = 0.5
    slow_call_seconds: float = 2.0
    slow_call_rate: float = 0.8
    recovery_seconds: float = 30.0
    half_open_probes: int = 3
    probe_lease_seconds: float = 5.0


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"


class BreakerOpen(Exception):
    """The breaker refuses the call; `retry_after` seconds until it may admit one."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit breaker {name} is open; retry in {retry_after:.1f}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Permit:
    generation: int
    token: str
    probe: bool
    local: bool  # decided by the per-process fallback


class _LocalState:
    """The same rules as breaker.lua, for one process, while Redis is unreachable."""

    def __init__(self, config: BreakerConfig, transitions: Counter[tuple[str, str]]) -> None:
        self.config = config
        self.transitions = transitions
        self.state = "closed"
        self.generation = 0
        self.open_until = 0.0
        self.calls: deque[tuple[float, bool, bool]] = deque()  # (time, failed, slow)
        self.probes: dict[str, float] = {}  # token -> lease expiry
        self.successes = 0

    def _move(self, state: str, now: float) -> None:
        self.transitions[(self.state, state)] += 1
        self.state, self.generation = state, self.generation + 1
        self.probes.clear()
        self.calls.clear()
        self.successes = 0
        if state == "open":
            self.open_until = now + self.config.recovery_seconds

    def acquire(self, token: str) -> tuple[bool, float, bool]:
        now = time.monotonic()
        if self.state == "open":
            if now < self.open_until:
                return False, self.open_until - now, False
            self._move("half_open", now)
        if self.state == "half_open":
            for lapsed in [t for t, expiry in self.probes.items() if expiry <= now]:
                del self.probes[lapsed]
            if len(self.probes) + self.successes >= self.config.half_open_probes:
                return False, self.config.probe_lease_seconds, False
            self.probes[token] = now + self.config.probe_lease_seconds
            return True, 0.0, True
        return True, 0.0, False

    def report(self, permit: Permit, outcome: Outcome, duration: float) -> None:
        now, slow = time.monotonic(), duration >= self.config.slow_call_seconds
        if permit.generation != self.generation:
            return
        if self.state == "half_open":
            if self.probes.pop(permit.token, None) is None:
                return
            if outcome is Outcome.IGNORED:
                pass  # its slot is free again
            elif outcome is Outcome.FAILURE or slow:
                self._move("open", now)
            else:
                self.successes += 1
                if self.successes >= self.config.half_open_probes:
                    self._move("closed", now)
            return
        if self.state != "closed" or outcome is Outcome.IGNORED:
            return
        self.calls.append((now, outcome is Outcome.FAILURE, slow))
        while self.calls and self.calls[0][0] <= now - self.config.window_seconds:
            self.calls.popleft()
        total = len(self.calls)
        failures = sum(1 for _, failed, _ in self.calls if failed)
        slows = sum(1 for _, _, was_slow in self.calls if was_slow)
        if total >= self.config.min_calls and (
            failures / total >= self.config.failure_rate or slows / total >= self.config.slow_call_rate
        ):
            self._move("open", now)


class CircuitBreaker:
    def __init__(self, redis: Redis, keys: Keys, name: str, config: BreakerConfig) -> None:
        self.name = name
        self.config = config
        self._keys = [keys.breaker(name), keys.breaker_probes(name)]
        self._script = load(redis, __file__, "breaker")
        # For metrics: transitions this process caused or saw (from, to), probes it was
        # admitted for, and decisions it made without Redis.
        self.transitions: Counter[tuple[str, str]] = Counter()
        self.probes_admitted = 0
        self._local = _LocalState(config, self.transitions)
        self.fallbacks = 0  # decisions made without Redis
        self._redis_down = False

    async def acquire(self) -> Permit:
        """Permission for one call; raises BreakerOpen when the breaker refuses."""
        token = uuid.uuid4().hex
        lease_ms = int(self.config.probe_lease_seconds * 1000)
        try:
            raw = await self._script(
                keys=self._keys, args=["acquire", token, self.config.half_open_probes, lease_ms]
            )
        except (RedisError, OSError) as exc:
            self._fell_back(exc)
            allowed, retry_after, probe = self._local.acquire(token)
            if not allowed:
                raise BreakerOpen(self.name, retry_after) from None
            self.probes_admitted += probe
            return Permit(self._local.generation, token, probe, local=True)
        self._redis_back()
        admitted, generation, retry_ms, role = int(raw[0]), int(raw[1]), int(raw[2]), _text(raw[3])
        if int(raw[4]):  # this call found the recovery time over
            self.transitions[("open", "half_open")] += 1
        if not admitted:
            raise BreakerOpen(self.name, retry_ms / 1000)
        self.probes_admitted += role == "probe"
        return Permit(generation, token, role == "probe", local=False)

    async def report(self, permit: Permit, outcome: Outcome, duration_seconds: float) -> str:
        """Record how the permitted call went; the script's verdict (for logs and tests)."""
        if permit.local:
            self._local.report(permit, outcome, duration_seconds)
            return "local"
        c = self.config
        args: list[str | int | float] = [
            "report", permit.token, permit.generation, outcome.value, int(duration_seconds * 1000),
            int(c.window_seconds * 1000), int(c.bucket_seconds * 1000), c.min_calls, c.failure_rate,
            int(c.slow_call_seconds * 1000), c.slow_call_rate, int(c.recovery_seconds * 1000),
            c.half_open_probes,
        ]  # fmt: skip
        try:
            raw = await self._script(keys=self._keys, args=args)
        except (RedisError, OSError) as exc:
            self._fell_back(exc)
            return "lost"  # the outcome of a call decided by Redis cannot be recorded now
        result = _text(raw[0])
        if result == "opened":
            self.transitions[("half_open" if permit.probe else "closed", "open")] += 1
            log.warning("circuit breaker %s opened", self.name)
        elif result == "closed":
            self.transitions[("half_open", "closed")] += 1
            log.info("circuit breaker %s closed", self.name)
        return result

    def _fell_back(self, exc: BaseException) -> None:
        self.fallbacks += 1
        if not self._redis_down:
            log.error("circuit breaker %s cannot reach Redis (%s); deciding per process", self.name, exc)
            self._redis_down = True

    def _redis_back(self) -> None:
        if self._redis_down:
            log.warning("circuit breaker %s reaches Redis again", self.name)
            self._redis_down = False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
