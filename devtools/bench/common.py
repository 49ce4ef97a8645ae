"""What the benchmark scripts share: the phases named on their command line, the JWT secret of
the services they start, those services' environment (test mode, quiet logs, keys under a
prefix of the benchmark's own), starting a service (for the length of a block) and loading it
with wrk (throughput and the server's CPU per request), and the raw pipelined XADD the event
benchmarks compare against."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import jwt
from redis.asyncio import Redis

SECRET = "bench-secret-0123456789abcdef-0123456789"


def chosen_phases(doc: str | None, phases: Sequence[str]) -> Sequence[str]:
    """The phases named on the command line (all of `phases` if none), for a benchmark whose
    module docstring `doc` describes it."""
    parser = argparse.ArgumentParser(description=(doc or "").partition("\n")[0])
    parser.add_argument("phases", nargs="*", help=f"of {', '.join(phases)} (default: all)")
    chosen: list[str] = parser.parse_args().phases
    if set(chosen) - set(phases):  # not `choices`: argparse checks an empty `*` list against them
        parser.error(f"phases are {', '.join(phases)}")
    return chosen or phases


def service_env(database_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "ENV": "test",
        "JWT_SECRET": SECRET,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
    }


async def xadd_pipelined(redis: Redis, stream: str, entries: list[dict[Any, Any]]) -> float:
    """XADD `entries` pipelined by 100 (the ceiling the issue quotes); the seconds it took."""
    started = time.perf_counter()
    for start in range(0, len(entries), 100):
        async with redis.pipeline(transaction=False) as pipe:
            for fields in entries[start : start + 100]:
                pipe.xadd(stream, fields)
            await pipe.execute()
    return time.perf_counter() - started


def token(uid: str, roles: tuple[str, ...] = ()) -> str:
    claims = {"uid": uid, "roles": list(roles), "exp": int(time.time()) + 3600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def start(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """A service process on `port`, once its /health answers."""
    process = subprocess.Popen(
        args,
        env={**os.environ, **env, "PORT": str(port)},
        stdout=subprocess.DEVNULL,  # its logs (the access log among them) are written, not kept
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)  # polling a process that is starting
    process.terminate()  # not left running behind the error
    process.wait(timeout=20)
    raise RuntimeError(f"{args} did not start")


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`start`, and terminate the process when the block ends."""
    process = start(args, env, port)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its children (a service's WEB_CONCURRENCY workers)
    have used so far (from /proc/<pid>/stat)."""
    ticks = 0
    for stat in _stats():
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid or stat.startswith(f"{pid} "):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _stats() -> Iterator[str]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # a process that just ended
                yield (entry / "stat").read_text()


def wrk(url: str, headers: Mapping[str, str], connections: int, seconds: int) -> float:
    """Requests per second wrk gets from `url`; any answer but a 2xx or 3xx is an error."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"wrk said no rate:\n{out}")
    return float(match.group(1))


def loaded(
    url: str, headers: Mapping[str, str], pid: int, connections: int, seconds: int
) -> tuple[float, float]:
    """Requests per second under wrk, and the server's CPU microseconds per request."""
    cpu = cpu_seconds(pid)
    rate = wrk(url, headers, connections, seconds)
    return rate, (cpu_seconds(pid) - cpu) / (rate * seconds) * 1e6
