"""monitoring/alerts.yml: valid for Prometheus (`promtool check rules`), and each alert fires
when it should, with its labels and its rendered summary, and not before (`promtool test
rules`). The expected runbooks are the rules' own (static text); what is checked is when an
alert fires and what its summary says."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).resolve().parents[3] / "monitoring" / "alerts.yml"


def rules() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False, timeout=60)


def test_the_rules_are_valid():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


W = 'job="worker", instance="w1"'
R = 'job="relay", instance="r1"'
C = 'job="cart", instance="c1"'
BEHIND = "behind the stream and falling further behind"
CART_PAGE = f'{C}, method="GET", route="/api/cart"'
BUCKET = f'storefront_http_request_duration_seconds_bucket{{{C}, route="/api/cart"'
# alert: (input series, (eval time, summary when firing or None when it must not fire), ...)
CASES = {
    "OutboxBacklogOld": (
        {f"storefront_outbox_oldest_unsent_age_seconds{{{R}}}": "0 30 90 120 150 200 220"},
        [("3m", None), ("5m", "Catalog events wait in the outbox: the oldest for 3m 20s")],
    ),
    "StreamGroupLagGrowing": (
        {f'storefront_stream_group_lag{{{W}, group="cart"}}': "1000+100x20"},
        [("3m", None), ("12m", f"The cart group is 2200 events {BEHIND}")],
    ),
    "DeadEvents": (
        {f'storefront_stream_dead_events{{{W}, group="cart"}}': "0 0 2 2 2"},
        [("2m", None), ("4m", "2 catalog event(s) were parked as dead")],
    ),
    "PendingEventsOld": (
        {f'storefront_stream_oldest_pending_age_seconds{{{W}, group="cart"}}': "0 100 400 460+60x6"},
        [("5m", None), ("9m", "An event has been pending for 13m 40s")],
    ),
    "NoLiveWorker": (
        {f'storefront_stream_live_workers{{{W}, group="cart"}}': "1 1 0 0 0 0"},
        [("2m", None), ("5m", "No cart worker is alive: catalog changes reach no cart")],
    ),
    "RelayNotActive": (
        {
            f"storefront_relay_active{{{R}}}": "1 1 0 0 0 0",
            'storefront_relay_active{job="relay", instance="r2"}': "0x5",
        },
        [("2m", None), ("5m", "No outbox relay is active: catalog events stay in the outbox")],
    ),
    "AntiEntropyRepairs": (
        {f"storefront_sweep_repairs_total{{{W}}}": "0 0 0 3 3"},
        [("2m", None), ("4m", "The sweep repaired 3 product snapshot(s) in the last hour")],
    ),
    "RedisLostEvents": (
        {f"storefront_relay_resent_events_total{{{R}}}": "0 0 40 40"},
        [("1m", None), ("3m", "Redis lost catalog events; the relay sent 40 again")],
    ),
    "CircuitBreakerOpen": (
        {
            f'storefront_breaker_state{{{C}, breaker="product_service", state="open"}}': "0 1 1 1",
            f'storefront_breaker_state{{{C}, breaker="product_service", state="closed"}}': "1 0 0 0",
        },
        [("1m", None), ("3m", "The product_service circuit breaker is open: the catalog is failing")],
    ),
    "HighErrorRatio": (
        {
            f'storefront_http_requests_total{{{CART_PAGE}, status="200"}}': "0+100x20",
            f'storefront_http_requests_total{{{CART_PAGE}, status="503"}}': "0+5x20",
        },
        [("12m", "cart answers 4.762% of requests with 5xx")],
    ),
    "LatencyAboveSLO": (
        {
            f'{BUCKET}, le="0.25"}}': "0+90x20",
            f'{BUCKET}, le="0.5"}}': "0+100x20",
            f'{BUCKET}, le="+Inf"}}': "0+100x20",
        },
        [("5m", None), ("17m", "cart's p99 latency is 475ms (SLO: 250 ms)")],
    ),
    "RateLimiterWithoutRedis": (
        {f"storefront_rate_limit_redis_failures_total{{{C}}}": "0 0+10x10"},
        [("12m", "cart decides rate limits without Redis")],
    ),
    "MetricsProbeFailing": (
        {f'storefront_metrics_probe_up{{{W}, probe="stream"}}': "1 0 0 0 0 0 0 0"},
        [("3m", None), ("7m", "worker cannot compute its stream metrics")],
    ),
}


def expected(rule: dict, summary: str, series: dict[str, str]) -> dict:
    labels = dict(rule.get("labels", {}))
    for key in ("job", "breaker", "probe"):  # the labels an alert keeps from what it aggregates by
        if f"{{{{ $labels.{key} }}}}" in rule["annotations"]["summary"]:
            labels[key] = next(s.split(f'{key}="')[1].split('"')[0] for s in series if f'{key}="' in s)
    return {
        "exp_labels": labels,
        "exp_annotations": {"summary": summary, "runbook": rule["annotations"]["runbook"]},
    }


def test_every_alert_has_a_summary_a_runbook_and_a_case_here():
    for name, rule in rules().items():
        assert rule["annotations"]["summary"] and len(rule["annotations"]["runbook"]) > 80, name
    assert set(CASES) == set(rules())


@pytest.mark.parametrize("alert", sorted(CASES))
def test_the_alert_fires_when_it_should(alert, tmp_path):
    rule = rules()[alert]
    series, evaluations = CASES[alert]
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": name, "values": values} for name, values in series.items()],
                "alert_rule_test": [
                    {
                        "eval_time": at,
                        "alertname": alert,
                        "exp_alerts": [] if summary is None else [expected(rule, summary, series)],
                    }
                    for at, summary in evaluations
                ],
            }
        ],
    }
    path = tmp_path / "test.yml"
    path.write_text(json.dumps(test))  # JSON is YAML
    ran = promtool("test", "rules", str(path))
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path):
    """The Grafana dashboard's queries, checked by promtool as recording rules would be."""
    dashboard = json.loads((RULES.parent / "grafana" / "storefront.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 15
    recording = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"q_{i}", "expr": e} for i, e in enumerate(exprs)]}
        ]
    }
    path = tmp_path / "dashboard.yml"
    path.write_text(json.dumps(recording))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
