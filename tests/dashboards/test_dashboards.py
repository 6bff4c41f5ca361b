"""The Grafana dashboards: generated JSON is current, every query is valid PromQL (checked by the
real ``promtool``), and every series it reads is one of DESIGN.md's metric contract."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"

CONTRACT = {
    "hft_orders_total",
    "hft_registrations_total",
    "hft_order_latency_seconds",
    "hft_fills_total",
    "hft_engine_queue_depth",
    "hft_db_commit_seconds",
    "hft_db_batch_size",
    "kube_pod_status_ready",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_waiting_reason",
    "kube_pod_container_status_last_terminated_reason",
    "kube_deployment_status_replicas_available",
    "container_cpu_usage_seconds_total",
    "container_cpu_cfs_throttled_periods_total",
    "container_cpu_cfs_periods_total",
    "container_memory_working_set_bytes",
    "container_oom_events_total",
}
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "le", "label_values"}


def _exprs() -> list[str]:
    exprs = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [t["expr"] for t in panel.get("targets", [])]
    return exprs


def test_generated_json_is_current() -> None:
    out = subprocess.run(
        [sys.executable, str(DASHBOARDS / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr


def test_queries_use_only_contract_metrics() -> None:
    exprs = _exprs()
    assert len(exprs) >= 10
    for expr in exprs:
        # Drop label matchers, strings, range selectors and `by (...)` groupings: what remains are
        # function names and series names.
        without_labels = re.sub(r"\{[^}]*\}|\"[^\"]*\"|\[[^\]]*\]|by \([^)]*\)", "", expr)
        names = set(re.findall(r"[a-z_][a-z0-9_]*", without_labels)) - PROMQL_WORDS
        series = {re.sub(r"_(bucket|sum|count)$", "", n) for n in names if not n.isdigit()}
        assert series <= CONTRACT, f"{expr!r} reads non-contract series {series - CONTRACT}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) missing")
def test_queries_parse_as_promql(tmp_path: pathlib.Path) -> None:
    # Grafana's variables are substituted the way Grafana would before Prometheus sees them.
    rules = [
        {
            "record": f"hftk8s:dashboard_query:{i}",
            "expr": e.replace("$namespace", "hft").replace("$__rate_interval", "1m"),
        }
        for i, e in enumerate(_exprs())
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout


def test_panels_come_from_the_slo_query_catalogue() -> None:
    from pytest_hftk8s.slo import queries

    catalogue = {q.render(window="$__rate_interval", window_wide="$__rate_interval") for _, row in
                 queries.DASHBOARD_ROWS for _, _, targets in row for _, q in targets}  # fmt: skip
    assert set(_exprs()) == catalogue
