"""The load test's report: steps cut from the request log, what counts as an error, and the
capacity figure (the highest rate held within the SLO without errors)."""

from devtools.loadtest.report import Request, capacity, steps, summary


def log(at: float, ms: float = 10.0, status: int = 200, name: str = "catalog: listing") -> Request:
    return Request(at, name, ms, status)


def test_each_step_leaves_out_its_warmup_and_counts_its_own_requests():
    # Two 20 s steps from t=100: the first second of each step's warm-up is left out.
    requests = [log(100 + t / 2, ms=5) for t in range(40)]  # step 1: 2 req/s
    requests += [log(120 + t / 4, ms=50) for t in range(80)]  # step 2: 4 req/s
    found = steps(sorted(requests, key=lambda r: r.at), users=[10, 20], seconds=20)
    assert [(s.users, round(s.rate, 1), s.p50, s.requests) for s in found] == [
        (10, 2.0, 5, 30),
        (20, 4.0, 50, 60),
    ]


def test_a_refusal_the_shop_means_is_no_error_but_a_5xx_429_or_no_answer_is():
    assert [log(0, status=s).error for s in (200, 304, 404, 409, 412, 422)] == [False] * 6
    assert [log(0, status=s).error for s in (0, 400, 429, 500, 503)] == [True] * 5


def test_capacity_is_the_fastest_step_within_the_slo_and_without_errors():
    requests = [log(t / 10, ms=20) for t in range(200)]  # 10 req/s, fast
    requests += [log(20 + t / 20, ms=90) for t in range(400)]  # 20 req/s, within 100 ms
    requests += [log(40 + t / 40, ms=300) for t in range(800)]  # 40 req/s, too slow
    found = steps(requests, users=[5, 10, 20], seconds=20)
    assert capacity(found, slo_ms=100).users == 10
    with_error = [*requests[:250], log(25, status=502), *requests[250:]]
    assert capacity(steps(with_error, users=[5, 10, 20], seconds=20), slo_ms=100).users == 5
    assert capacity(found, slo_ms=10) is None
    assert "capacity: 20 req/s with p99 90 ms at 10 users" in summary(found, requests, 100)
