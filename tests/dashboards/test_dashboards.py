"""The Grafana dashboards: the generated JSON is current (beside the sources and in the Grafana
component), every query is valid PromQL (checked by the real ``promtool``) over the metric contract
only, every built-in PromQL SLO has a panel whose threshold is the code's bound, the chaos annotation
is scoped to the dashboard's own data source and namespace, and SLO failures link to their panel."""

from __future__ import annotations

import ast
import json
import pathlib
import re
import shutil
import subprocess
import sys
import urllib.parse

import pytest
import yaml

from pytest_hftk8s import manifests
from pytest_hftk8s.errors import SloViolation
from pytest_hftk8s.results import SloResult, Window
from pytest_hftk8s.settings import HftSettings
from pytest_hftk8s.slo import builtin, dashboard, evaluate, queries

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
COMPONENT = ROOT / "manifests" / "components" / "grafana" / "dashboards"

#: DESIGN.md's metric contract, kube-state-metrics' limits, and the chaos series of
#: docs/ARCHITECTURE.md (kube-state-metrics' Custom Resource State on Kubernetes, the local exporter).
CONTRACT = {
    "hft_orders_total",
    "hft_registrations_total",
    "hft_order_latency_seconds",
    "hft_fills_total",
    "hft_engine_queue_depth",
    "hft_db_commit_seconds",
    "hft_db_batch_size",
    "hft_redis_seconds",
    "kube_pod_status_ready",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_waiting_reason",
    "kube_pod_container_status_last_terminated_reason",
    "kube_deployment_status_replicas_available",
    "kube_pod_container_resource_limits",
    "container_cpu_usage_seconds_total",
    "container_cpu_cfs_throttled_periods_total",
    "container_cpu_cfs_periods_total",
    "container_memory_working_set_bytes",
    "container_oom_events_total",
    "machine_cpu_cores",
    "hftk8s_chaos_injected",
}
PROMQL_WORDS = {
    "sum", "by", "rate", "increase", "histogram_quantile", "max", "max_over_time", "count", "or", "le",
    "label_values", "nan",
}  # fmt: skip
#: Every built-in SLO that Prometheus judges (the client-side p99 is the load generator's own).
PROMQL_BUILTINS = (
    "throughput",
    "registration_success",
    "p99_order_latency_ms",
    "no_crashloopbackoff",
    "bounded_restarts",
    "no_oomkilled",
)


def _load(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def _all_panels() -> list[dict]:
    return [p for path in sorted(DASHBOARDS.glob("*.json")) for p in _load(path)["panels"]]


def _exprs() -> list[str]:
    return [t["expr"] for panel in _all_panels() for t in panel.get("targets", [])]


def _annotations() -> list[dict]:
    return [a for path in sorted(DASHBOARDS.glob("*.json")) for a in _load(path)["annotations"]["list"]]


def _platform() -> dict:
    return _load(DASHBOARDS / "platform.json")


def _panel(panel_id: int) -> dict:
    (found,) = [p for p in _platform()["panels"] if p["id"] == panel_id]
    return found


# -- drift -----------------------------------------------------------------------------------------


def test_generated_json_is_current_in_both_places() -> None:
    out = subprocess.run(
        [sys.executable, str(DASHBOARDS / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    names = sorted(p.name for p in DASHBOARDS.glob("*.json"))
    assert names == ["platform.json"]
    assert sorted(p.name for p in COMPONENT.glob("*.json")) == names
    for name in names:
        assert (COMPONENT / name).read_text() == (DASHBOARDS / name).read_text()
    assert manifests.dashboards_json() == {n: (DASHBOARDS / n).read_text() for n in names}


def test_check_reports_a_stale_copy(tmp_path: pathlib.Path) -> None:
    """``--check`` compares against a fresh rendering: a hand edit of either copy is caught."""
    copy = tmp_path / "dashboards"
    component = tmp_path / "manifests" / "components" / "grafana" / "dashboards"
    shutil.copytree(DASHBOARDS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(COMPONENT, component)
    stale = json.loads((component / "platform.json").read_text())
    stale["title"] = "edited by hand"
    (component / "platform.json").write_text(json.dumps(stale))
    out = subprocess.run(
        [sys.executable, str(copy / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "manifests/components/grafana/dashboards/platform.json" in out.stderr
    assert "dashboards/platform.json," not in out.stderr  # the untouched copy is current


def test_generator_uses_only_grafanalibs_public_api() -> None:
    """No private grafanalib module (``grafanalib._gen``), in the generator or the sources."""
    for path in [DASHBOARDS / "generate.py", *DASHBOARDS.glob("*.dashboard.py")]:
        tree = ast.parse(path.read_text())
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [
            f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
        ]
        grafanalib = [m for m in imported if m.startswith("grafanalib")]
        assert not [m for m in grafanalib if any(part.startswith("_") for part in m.split("."))], path.name
    assert "importlib" in (DASHBOARDS / "generate.py").read_text()


# -- queries ---------------------------------------------------------------------------------------


def _series(expr: str) -> set[str]:
    # Drop label matchers, strings, range selectors and `by (...)` groupings: what remains are
    # function names, numbers and series names.
    without_labels = re.sub(r"\{[^}]*\}|\"[^\"]*\"|\[[^\]]*\]|by \([^)]*\)|\$\w+", "", expr)
    names = {n.lower() for n in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", without_labels)} - PROMQL_WORDS
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def test_queries_use_only_contract_metrics() -> None:
    exprs = _exprs() + [a["expr"] for a in _annotations()]
    assert len(exprs) >= 25
    for expr in exprs:
        series = _series(expr)
        assert series, expr
        assert series <= CONTRACT, f"{expr!r} reads non-contract series {series - CONTRACT}"


def test_contract_check_catches_a_foreign_series() -> None:
    assert _series('sum(rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval]))') == {
        "node_cpu_seconds_total"
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) missing")
def test_queries_parse_as_promql(tmp_path: pathlib.Path) -> None:
    # Grafana's variables are substituted the way Grafana would before Prometheus sees them.
    exprs = _exprs() + [a["expr"] for a in _annotations()]
    rules = [
        {
            "record": f"hftk8s:dashboard_query:{i}",
            "expr": e.replace("$namespace", "hft")
            .replace("$__rate_interval", "1m")
            .replace("$offered_rate", "120"),
        }
        for i, e in enumerate(exprs)
    ]
    assert not [r for r in rules if "$" in r["expr"]]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout


def test_panels_come_from_the_slo_query_catalogue() -> None:
    catalogue = {q.render(window="$__rate_interval", window_wide="$__rate_interval") for _, row in
                 queries.DASHBOARD_ROWS for _, _, targets in row for _, q in targets}  # fmt: skip
    slos = {p.expr for p in dashboard.SLO_PANELS}
    assert set(_exprs()) == catalogue | slos
    assert {r for r, _ in queries.DASHBOARD_ROWS} >= {"Per-pod resources against their limits", "Scaling"}


# -- SLO panels ------------------------------------------------------------------------------------


def test_every_promql_builtin_has_a_panel_with_the_codes_threshold_drawn() -> None:
    panels = _platform()["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for name in PROMQL_BUILTINS:
        slo = builtin.builtin(name)  # the constructor's defaults: the bound the bundled suites assert
        panel_def = dashboard.panel_for(slo.name)
        assert panel_def is not None, name
        panel = _panel(panel_def.panel_id)
        assert panel["targets"][0]["expr"] == dashboard.queries.render(
            slo.expr, {"window": "$__rate_interval", "window_wide": "$__rate_interval"}
        )
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [s["value"] for s in steps] == [None, slo.threshold], name
        assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "line"}
        assert f"SLO {slo.name}" in panel["description"]
    # the baseline suite's server p99 bound is an option whose default is the built-in's
    assert dashboard.panel_for("p99_order_latency_ms").threshold == HftSettings(cluster=None).baseline_p99_ms


def test_slo_panel_ids_are_stable() -> None:
    """Links already handed out (CI logs, tickets) keep opening the same panel."""
    assert {p.name: p.panel_id for p in dashboard.SLO_PANELS} == {
        "throughput": 101,
        "registration_success": 102,
        "p99_order_latency_ms": 103,
        "no_crashloopbackoff": 104,
        "bounded_restarts": 105,
        "no_oomkilled": 106,
    }
    assert dashboard.panel_for("client_p99_latency_ms") is None  # the generator's, not Prometheus'


def test_the_throughput_panel_needs_the_tests_offered_rate() -> None:
    variables = {v["name"]: v for v in _platform()["templating"]["list"]}
    offered = variables[dashboard.OFFERED_RATE_VARIABLE]
    assert offered["type"] == "textbox"
    assert offered["query"] == "NaN"  # no ratio against a made-up rate
    assert "$offered_rate" in _panel(dashboard.panel_for("throughput").panel_id)["targets"][0]["expr"]


# -- chaos annotation ------------------------------------------------------------------------------


def test_the_chaos_annotation_is_scoped_to_this_dashboards_source_and_namespace() -> None:
    """Unlike Chaos Mesh's Grafana data source (chaos-mesh/chaos-mesh#1482), whose events appear on
    every data source, the windows come from the Prometheus and namespace the dashboard shows."""
    board = _platform()
    (chaos,) = [a for a in board["annotations"]["list"] if "hftk8s_chaos_injected" in a.get("expr", "")]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert chaos["datasource"] == "${datasource}"
    assert {p["datasource"] for p in board["panels"] if p.get("targets")} == {"${datasource}"}
    selector = re.fullmatch(r"hftk8s_chaos_injected\{([^}]*)\} == 1", chaos["expr"])
    assert selector is not None, chaos["expr"]
    assert selector.group(1) == 'namespace="$namespace"'
    assert chaos["expr"] == queries.CHAOS_INJECTED.expr
    assert chaos["enable"] is True
    assert chaos["useValueForTime"] is False
    assert set(chaos["tagKeys"].split(",")) == {"kind", "name"}


# -- links -----------------------------------------------------------------------------------------


def test_panel_url_opens_the_slos_panel_for_the_window() -> None:
    window = Window(1_700_000_000.25, 1_700_000_012.5)
    url = dashboard.panel_url("http://grafana:3000/", "p99_order_latency_ms", window, namespace="hft-ci")
    assert url is not None
    parts = urllib.parse.urlsplit(url)
    assert parts.path == f"/d/{dashboard.DASHBOARD_UID}/pytest-hftk8s-hft-platform"
    assert _platform()["uid"] == dashboard.DASHBOARD_UID
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert query == {
        "viewPanel": "103",
        "from": "1700000000250",
        "to": "1700000012500",
        "var-namespace": "hft-ci",
    }
    assert _panel(int(query["viewPanel"]))["title"] == "Order latency p99 (server side)"
    assert dashboard.panel_url("http://g", "client_p99_latency_ms", window, namespace="hft") is None


def _missed(name: str, query: str, window: Window) -> SloResult:
    return SloResult(
        name=name, query=query, comparator=">=", threshold=0.95, observed=0.5, passed=False, window=window
    )


def test_a_failed_slo_message_links_to_its_panel() -> None:
    window = Window(1_700_000_000.0, 1_700_000_010.0)
    slo = builtin.throughput()
    rendered = slo.render(window, variables={"namespace": "hft", "offered_rate": 240.5})
    links = dashboard.PanelLinks(namespace="hft", grafana_url="https://grafana.example/g")
    with pytest.raises(SloViolation) as e:
        evaluate.check(
            [_missed("throughput", rendered, window)], report_path="hft-report/index.html", links=links
        )
    (line,) = [ln.strip() for ln in str(e.value).splitlines() if ln.strip().startswith("dashboard: ")]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(line.removeprefix("dashboard: ")).query))
    assert line.startswith(f"dashboard: https://grafana.example/g/d/{dashboard.DASHBOARD_UID}/")
    assert query["viewPanel"] == "101"
    assert (query["from"], query["to"]) == ("1700000000000", "1700000010000")
    assert query["var-offered_rate"] == "240.5"  # the ratio is drawn against the test's own rate


def test_without_a_grafana_the_message_names_the_panel_in_the_reports_json() -> None:
    window = Window(1_700_000_000.0, 1_700_000_010.0)
    links = dashboard.PanelLinks(namespace="hft", dashboard_json="hft-report/dashboards/platform.json")
    results = [_missed("no_oomkilled", "q", window), _missed("client_p99_latency_ms", "", window)]
    with pytest.raises(SloViolation) as e:
        evaluate.check(results, links=links)
    lines = [ln.strip() for ln in str(e.value).splitlines() if ln.strip().startswith("dashboard: ")]
    assert lines == [
        "dashboard: panel 106 (Containers last terminated OOMKilled) of hft-report/dashboards/platform.json, "
        "1700000000000..1700000010000 ms; pass --hft-grafana-url to get a link"
    ]
