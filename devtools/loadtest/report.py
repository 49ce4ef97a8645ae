"""What `scripts/loadtest` makes of its request log: each step's throughput, percentiles and
errors, the highest rate held within the SLO, charts over time per endpoint group (PNG, with
matplotlib) and a one-screen text summary. Pure functions over the log, apart from the charts."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Business refusals (see the locustfile): answered as meant, not errors.
REFUSALS = {404, 409, 412, 422}
WARMUP_SECONDS = 5  # of each step, while the new users arrive


@dataclass(frozen=True)
class Request:
    at: float
    name: str
    ms: float
    status: int

    @property
    def error(self) -> bool:
        """No answer, a 5xx, or a refusal the shop does not mean (a 429, a 400...)."""
        return self.status == 0 or self.status >= 500 or (self.status >= 400 and self.status not in REFUSALS)

    @property
    def group(self) -> str:
        return self.name.partition(":")[0]


@dataclass(frozen=True)
class Step:
    users: int
    rate: float
    p50: float
    p95: float
    p99: float
    errors: int
    server_errors: int
    requests: int


def read_log(path: Path) -> list[Request]:
    with path.open() as file:
        rows = [Request(float(at), name, float(ms), int(status)) for at, name, ms, status in csv.reader(file)]
    return sorted(rows, key=lambda r: r.at)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def steps(requests: Sequence[Request], users: Sequence[int], seconds: int) -> list[Step]:
    """Each step's figures, its first WARMUP_SECONDS left out."""
    if not requests:
        return []
    start, found = requests[0].at, []
    for index, count in enumerate(users):
        low, high = start + index * seconds + WARMUP_SECONDS, start + (index + 1) * seconds
        inside = [r for r in requests if low <= r.at < high]
        if not inside:
            continue
        times = sorted(r.ms for r in inside)
        found.append(
            Step(
                users=count,
                rate=len(inside) / (high - low),
                p50=percentile(times, 0.50),
                p95=percentile(times, 0.95),
                p99=percentile(times, 0.99),
                errors=sum(r.error for r in inside),
                server_errors=sum(r.status >= 500 for r in inside),
                requests=len(inside),
            )
        )
    return found


def capacity(found: Sequence[Step], slo_ms: float) -> Step | None:
    """The step with the highest rate whose p99 is within the SLO with no error."""
    held = [step for step in found if step.p99 <= slo_ms and step.errors == 0]
    return max(held, key=lambda step: step.rate, default=None)


def by_endpoint(requests: Sequence[Request]) -> dict[str, tuple[int, float, float, int, int]]:
    """name -> (requests, p50, p99, refusals, errors) over the whole run."""
    grouped: dict[str, list[Request]] = defaultdict(list)
    for request in requests:
        grouped[request.name].append(request)
    table = {}
    for name, rows in sorted(grouped.items()):
        times = sorted(r.ms for r in rows)
        refused = sum(r.status in REFUSALS for r in rows)
        table[name] = (
            len(rows),
            percentile(times, 0.5),
            percentile(times, 0.99),
            refused,
            sum(r.error for r in rows),
        )
    return table


def summary(found: Sequence[Step], requests: Sequence[Request], slo_ms: float) -> str:
    lines = [f"{'users':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} {'5xx':>5}"]
    for step in found:
        lines.append(
            f"{step.users:6d} {step.rate:8.1f} {step.p50:8.1f} {step.p95:8.1f} {step.p99:8.1f}"
            f" {step.errors:7d} {step.server_errors:5d}"
        )
    best = capacity(found, slo_ms)
    lines.append(
        f"capacity: {best.rate:.0f} req/s with p99 {best.p99:.0f} ms at {best.users} users (SLO: p99 within "
        f"{slo_ms:.0f} ms, no errors)"
        if best
        else f"capacity: no step held p99 within {slo_ms:.0f} ms without errors"
    )
    lines.append(f"{'endpoint':28} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'refused':>8} {'errors':>7}")
    for name, (count, p50, p99, refused, errors) in by_endpoint(requests).items():
        lines.append(f"{name:28} {count:9d} {p50:8.1f} {p99:8.1f} {refused:8d} {errors:7d}")
    return "\n".join(lines)


def charts(requests: Sequence[Request], directory: Path, bucket_seconds: int = 5) -> list[Path]:
    """throughput.png and latency.png: per endpoint group, over the run."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    if not requests:
        return []
    start = requests[0].at
    buckets: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for request in requests:
        buckets[request.group][int((request.at - start) // bucket_seconds)].append(request.ms)
    groups = sorted(buckets)
    made = []
    figure, axis = plt.subplots(figsize=(10, 5))
    for group in groups:
        xs = sorted(buckets[group])
        axis.plot(
            [x * bucket_seconds for x in xs],
            [len(buckets[group][x]) / bucket_seconds for x in xs],
            label=group,
        )
    axis.set(
        xlabel="seconds into the run", ylabel="requests per second", title="Throughput per endpoint group"
    )
    axis.legend()
    figure.tight_layout()
    made.append(directory / "throughput.png")
    figure.savefig(made[-1], dpi=100)
    plt.close(figure)
    figure, axes = plt.subplots(len(groups), 1, figsize=(10, 3 * len(groups)), sharex=True, squeeze=False)
    for axis, group in zip(axes[:, 0], groups, strict=True):
        xs = sorted(buckets[group])
        for q in (0.50, 0.95, 0.99):
            values = [percentile(sorted(buckets[group][x]), q) for x in xs]
            axis.plot([x * bucket_seconds for x in xs], values, label=f"p{int(q * 100)}")
        axis.set(ylabel="ms", title=f"{group}: latency")
        axis.legend(loc="upper left")
    axes[-1, 0].set_xlabel("seconds into the run")
    figure.tight_layout()
    made.append(directory / "latency.png")
    figure.savefig(made[-1], dpi=100)
    plt.close(figure)
    return made


def mean_rate(found: Sequence[Step]) -> float:
    return statistics.fmean(step.rate for step in found) if found else 0.0
