"""`python -m devtools.loadtest --catalog URL --cart URL` (scripts/loadtest): a step load of
shoppers and admins with Locust (devtools/loadtest/locustfile.py), then its report and the
checks of what it must not break.

Writes into --out (default .loadtest/<time>): Locust's CSV and HTML, requests.csv (every
request), throughput.png and latency.png, summary.txt. Exit status 1 if any request got a 5xx
or no answer, or a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt

from devtools.loadtest import checks, report
from shared.config import DEV_JWT_SECRET

HERE = Path(__file__).resolve().parent
PROMO_CODES: list[dict[str, str | int]] = [
    {"code": "LOAD10", "kind": "percent", "amount": "10"},
    {"code": "LOAD5OFF", "kind": "fixed", "amount": "5", "min_subtotal": "20"},
    {"code": "LOAD50USES", "kind": "percent", "amount": "15", "max_uses": 50},
]


def _admin(secret: str) -> dict[str, str]:
    claims = {"uid": "load-setup", "roles": ["admin"], "exp": int(time.time()) + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"}


def prepare(catalog: str, cart: str, secret: str) -> tuple[list[int], list[str]]:
    """The products to shop (every one the catalog lists), the words of their names, and the
    promo codes made sure of."""
    ids: list[int] = []
    words: set[str] = set()
    cursor = None
    with httpx.Client(timeout=10) as client:
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = client.get(f"{catalog}/api/products", params=params).raise_for_status().json()
            for item in page["items"]:
                ids.append(item["id"])
                words.update(w.lower() for w in re.findall(r"[A-Za-z]{3,}", item["name"]))
            cursor = page["next_cursor"]
            if cursor is None:
                break
        for body in PROMO_CODES:
            created = client.post(f"{cart}/api/promo-codes", json=body, headers=_admin(secret))
            if created.status_code not in (201, 409):  # 409: made by an earlier run
                created.raise_for_status()
    if not ids:
        raise SystemExit("loadtest: the catalog lists no product (load demo data first)")
    return ids, sorted(words)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/loadtest", description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", default="http://127.0.0.1:8001")
    parser.add_argument("--cart", default="http://127.0.0.1:8002")
    parser.add_argument("--steps", default="10,25,50,100,150,200,300", help="users per step")
    parser.add_argument("--step-seconds", type=int, default=30)
    parser.add_argument("--slo-ms", type=float, default=200.0, help="p99 a step must hold")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    secret = os.environ.get("JWT_SECRET", DEV_JWT_SECRET)
    out = args.out or Path(".loadtest") / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    ids, words = prepare(args.catalog, args.cart, secret)
    log = out / "requests.csv"
    env = {
        **os.environ,
        "CART_URL": args.cart,
        "JWT_SECRET": secret,
        "LOADTEST_PRODUCT_IDS": ",".join(map(str, ids)),
        "LOADTEST_PROMO_CODES": ",".join(str(code["code"]) for code in PROMO_CODES),
        "LOADTEST_WORDS": ",".join(words),
        "LOADTEST_REQUEST_LOG": str(log),
        "LOADTEST_STEPS": args.steps,
        "LOADTEST_STEP_SECONDS": str(args.step_seconds),
    }
    command = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless"]
    command += ["--host", args.catalog, "--csv", str(out / "locust"), "--csv-full-history"]
    command += ["--html", str(out / "locust.html"), "--only-summary", "--loglevel", "WARNING"]
    print(f"loadtest: {len(ids)} products, steps of {args.steps} users, {args.step_seconds} s each -> {out}")
    subprocess.run(command, env=env, check=False)  # its exit status counts failures: ours is below

    requests = report.read_log(log)
    users = [int(n) for n in args.steps.split(",")]
    found = report.steps(requests, users, args.step_seconds)
    text = report.summary(found, requests, args.slo_ms)
    report.charts(requests, out)
    failures = []
    server_errors, unanswered = sum(r.status >= 500 for r in requests), sum(r.status == 0 for r in requests)
    if server_errors or unanswered:
        failures.append(f"{server_errors} 5xx, {unanswered} unanswered")
    urls = [os.environ.get(name) for name in ("CATALOG_DATABASE_URL", "CART_DATABASE_URL", "REDIS_URL")]
    if all(urls):
        prefix = os.environ.get("REDIS_KEY_PREFIX", "storefront")
        cluster = os.environ.get("REDIS_CLUSTER", "false").lower() in ("1", "true", "yes", "on")
        partitions = int(os.environ.get("STREAM_PARTITIONS", "1"))
        checking = checks.run(urls[0], urls[1], urls[2], prefix, cluster=cluster, partitions=partitions)  # type: ignore[arg-type]
        failures += asyncio.run(checking)
        held = "no 5xx; every event applied; snapshots equal the catalog; promo uses = carts holding them"
        text += "\nchecks: " + ("; ".join(failures) if failures else held)
    else:
        text += "\nchecks: skipped (set CATALOG_DATABASE_URL, CART_DATABASE_URL and REDIS_URL to run them)"
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
