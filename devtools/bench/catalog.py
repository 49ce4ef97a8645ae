"""Benchmark the catalog's public reads (run it with scripts/bench_catalog [--products N]).

Starts throwaway PostgreSQL and Redis, loads N products in SQL (devtools/bench/catalog_data.py),
starts the catalog (one uvicorn worker, its full middleware: request ids, access log at INFO,
metrics, rate limiting on with limits too high to refuse) and a hand-written baseline doing the
same I/O (devtools/bench/catalog_baseline.py), then reports:

- latency of every kind of listing and search (sequential requests on one connection, p50 and
  p99 in ms): what a shopper waits for, whatever the words (target: within 20 ms);
- throughput with wrk against the catalog and the baseline, alternating in the same run, as
  their ratio, with the server CPU per request (target: at least 0.8 for the product page and
  the listings), and what a `304` costs against a `200`;
- what gzip costs and saves on a listing of 100 products: the catalog alone, with and without
  `Accept-Encoding: gzip`, alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import httpx

from devtools.bench import catalog_data
from devtools.bench.common import SECRET, loaded, start
from devtools.servers import free_port, throwaway_postgres, throwaway_redis
from shared.http.pagination import encode_cursor
from shared.storage.migrations import SQL_ROOT, migrate

CONNECTIONS, SECONDS, ROUNDS, SAMPLES = 64, 5, 3, 200
UNLIMITED = {f"RATE_LIMIT_{group}": "100000/1" for group in ("READS", "WRITES", "ADMIN", "INTERNAL")}


def scenarios(products: int) -> dict[str, str]:
    """What a shopper asks for, as catalog paths (the data is catalog_data's)."""
    deep = httpx.QueryParams({"cursor": encode_cursor(products * 9 // 10)})
    return {
        "product page": f"/api/products/{products // 2}",
        "listing, first page": "/api/products?limit=20",
        "listing, a page 90% deep": f"/api/products?limit=20&{deep}",
        "category": "/api/products?limit=20&category_id=7",
        "category, 90% deep": f"/api/products?limit=20&category_id=7&{deep}",
        "category, retired only": "/api/products?limit=20&category_id=7&is_active=false",
        "search, one common word": "/api/products?limit=20&q=boot",
        "search, two common words": "/api/products?limit=20&q=wool+boot",
        "search, words never together": "/api/products?limit=20&q=red+blue",
        "search, three words": "/api/products?limit=20&q=navy+wool+boot",
        "search, a number (rare)": f"/api/products?limit=20&q={products // 3}",
        "search, no such word": "/api/products?limit=20&q=xqz",
        "search, a typo": "/api/products?limit=20&q=lether+bott",
        "search, unfinished word": "/api/products?limit=20&q=cashm",
        "search, in a category": "/api/products?limit=20&q=wool&category_id=7",
        "search, word + retired only": "/api/products?limit=20&q=boot&is_active=false",
    }


def latencies(base: str, paths: dict[str, str]) -> None:
    print(f"latency, {SAMPLES} sequential requests each (ms):")
    print(f"  {'':32} {'p50':>6} {'p99':>6} {'max':>6}  items")
    worst = 0.0
    with httpx.Client(base_url=base) as client:
        for name, path in paths.items():
            timings, items = [], 0
            for _ in range(SAMPLES):
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text}")
            body = response.json()
            items = len(body["items"]) if "items" in body else 1
            timings.sort()
            p50, p99 = statistics.median(timings), timings[int(len(timings) * 0.99) - 1]
            worst = max(worst, p99)
            print(f"  {name:32} {p50:6.1f} {p99:6.1f} {timings[-1]:6.1f}  {items}")
    print(f"  worst p99: {worst:.1f} ms (target: within 20 ms)")


def throughput(catalog: str, baseline: str, pids: tuple[int, int], products: int) -> None:
    paths = scenarios(products)
    chosen = ["product page", "listing, first page", "listing, a page 90% deep", "category"]
    chosen += ["search, two common words"]
    tag = httpx.get(catalog + paths["product page"]).headers["etag"]
    listing_tag = httpx.get(catalog + paths["listing, first page"]).headers["etag"]
    runs: dict[str, tuple[list[tuple[float, float]], list[tuple[float, float]]]] = {}
    cases: list[tuple[str, str, dict[str, str]]] = [(name, paths[name], {}) for name in chosen]
    cases.append(("product page, 304", paths["product page"], {"If-None-Match": tag}))
    cases.append(("listing, 304", paths["listing, first page"], {"If-None-Match": listing_tag}))
    for name, path, headers in cases:
        ours, theirs = runs.setdefault(name, ([], []))
        for _ in range(ROUNDS):
            theirs.append(loaded(baseline + path, headers, pids[1], CONNECTIONS, SECONDS))
            ours.append(loaded(catalog + path, headers, pids[0], CONNECTIONS, SECONDS))
    print(f"throughput (wrk, {CONNECTIONS} connections, {ROUNDS} x {SECONDS} s alternating, medians):")
    print(f"  {'':28} {'catalog':>9} {'baseline':>9} {'ratio':>6}   CPU us/req: catalog baseline ratio")

    def med(runs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(run[i] for run in runs)

    for name, (ours, theirs) in runs.items():
        c, b = med(ours, 0), med(theirs, 0)
        cc, bc = med(ours, 1), med(theirs, 1)
        print(f"  {name:28} {c:9.0f} {b:9.0f} {c / b:6.2f}   {cc:18.0f} {bc:8.0f} {bc / cc:5.2f}")
    for kind, full in (("product page, 304", "product page"), ("listing, 304", "listing, first page")):
        print(
            f"  a 304 against a 200 ({full}): {med(runs[kind][0], 1) / med(runs[full][0], 1):.2f} "
            "of the CPU per request"
        )


def compression(catalog: str, pid: int) -> None:
    path = "/api/products?limit=100"
    gzip = {"Accept-Encoding": "gzip"}
    plain, packed = (
        httpx.get(catalog + path, headers={"Accept-Encoding": "identity"}),
        httpx.get(catalog + path, headers=gzip),
    )
    assert packed.headers.get("content-encoding") == "gzip", packed.headers
    sizes = len(plain.content), int(packed.headers["content-length"])
    runs: tuple[list[tuple[float, float]], list[tuple[float, float]]] = ([], [])
    for _ in range(ROUNDS):
        runs[0].append(loaded(catalog + path, {}, pid, CONNECTIONS, SECONDS))
        runs[1].append(loaded(catalog + path, gzip, pid, CONNECTIONS, SECONDS))
    rps, cpu = (statistics.median(run[i] for run in runs[0]) for i in (0, 1))
    gz_rps, gz_cpu = (statistics.median(run[i] for run in runs[1]) for i in (0, 1))
    print(
        f"gzip, a listing of 100 products ({sizes[0]:,} bytes, gzipped {sizes[1]:,}:"
        f" {sizes[1] / sizes[0]:.2f}):"
    )
    print(
        f"  requests/s {rps:.0f} plain, {gz_rps:.0f} gzipped ({gz_rps / rps:.2f});"
        f" CPU us/req {cpu:.0f} plain, {gz_cpu:.0f} gzipped ({gz_cpu / cpu:.2f})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench_catalog", description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=100_000, help="products to load (default 100000)")
    parser.add_argument(
        "--parts",
        default="latency,throughput,gzip",
        help="what to measure, comma-separated (default: latency,throughput,gzip)",
    )
    args = parser.parse_args(argv)
    with throwaway_postgres() as pg, throwaway_redis() as rd:
        database = pg.url("bench_catalog")
        asyncio.run(migrate(database, SQL_ROOT / "catalog"))
        started = time.perf_counter()
        asyncio.run(catalog_data.load(database, args.products))
        print(f"{args.products:,} products loaded in {time.perf_counter() - started:.0f} s")
        env = {"ENV": "test", "JWT_SECRET": SECRET, "REDIS_URL": rd.url, "DATABASE_URL": database}
        env |= {"LOG_LEVEL": "INFO", **UNLIMITED}
        ports = {name: free_port() for name in ("catalog", "baseline")}
        url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        processes = []
        try:
            processes.append(start([sys.executable, "-m", "app_product"], env, ports["catalog"]))
            baseline = [sys.executable, "-m", "devtools.bench.catalog_baseline", str(ports["baseline"])]
            processes.append(start(baseline, env, ports["baseline"]))
            parts = set(args.parts.split(","))
            if "latency" in parts:
                latencies(url["catalog"], scenarios(args.products))
            if "throughput" in parts:
                throughput(
                    url["catalog"], url["baseline"], (processes[0].pid, processes[1].pid), args.products
                )
            if "gzip" in parts:
                compression(url["catalog"], processes[0].pid)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)


if __name__ == "__main__":
    main()
