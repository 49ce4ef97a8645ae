"""Several instances share one limit: four processes hammering one key admit exactly the limit."""

import contextlib
import subprocess
import sys
import uuid

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.own_redis]  # both modes, each by name


@pytest.fixture(params=["single", "cluster"])
def redis_mode(request: pytest.FixtureRequest) -> tuple[str, list[str]]:
    """A Redis URL and the hammer's mode argument: a single server, or the 3+3 cluster."""
    if request.param == "cluster":
        return request.getfixturevalue("redis_cluster").url, ["cluster"]
    return request.getfixturevalue("redis_server").url, []


def test_four_processes_admit_exactly_the_limit_between_them(redis_mode):
    # Enough attempts that the limit outlasts the few milliseconds the processes take to start.
    prefix, limit, attempts = f"t{uuid.uuid4().hex[:8]}", 1000, 600
    url, mode = redis_mode
    command = [sys.executable, "-m", "tests.support.rate_limit_hammer", url, prefix, "user:shared"]
    with contextlib.ExitStack() as stack:
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        processes = [
            stack.enter_context(subprocess.Popen([*command, str(limit), str(attempts), *mode], **pipes))
            for _ in range(4)
        ]
        # A barrier: every process is connected before any fires.
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.close()
        outputs = [(process.stdout.read(), process.stderr.read()) for process in processes]  # type: ignore[union-attr]
        assert [process.wait(timeout=60) for process in processes] == [0, 0, 0, 0], outputs
    admitted = [int(out) for out, _ in outputs]
    assert sum(admitted) == limit
    assert sum(1 for count in admitted if count > 0) >= 2, admitted  # they really competed
