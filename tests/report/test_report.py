"""summary.json, index.html and failure bundles from plain result structures."""

from __future__ import annotations

import json
import math
import pathlib

from scripted_cluster import ScriptedCluster

from pytest_hftk8s.report import bundle, html, summary


def _records() -> list[dict]:
    slo = {
        "name": "throughput",
        "query": 'sum(rate(hft_orders_total{outcome="accepted"}[10000ms])) / 300',
        "observed": 0.97,
        "threshold": 0.95,
        "comparator": ">=",
        "passed": True,
        "unit": "ratio",
    }
    bad = {**slo, "name": "p99_order_latency_ms", "observed": math.nan, "passed": False, "message": "no data"}
    load = {
        "name": "baseline",
        "mode": "open",
        "offered_rate": 300,
        "achieved_rate": 299.5,
        "ok": 2995,
        "errors": {},
        "latency_ms": {"p50": 2.0, "p99": 9.5},
        "cpu": {"utilization": 0.1},
        "valid": True,
    }
    return [
        {
            "nodeid": "t.py::test_ok",
            "outcome": "passed",
            "duration": 10.2,
            "window": {"start": 1000.0, "end": 1010.0, "seconds": 10.0},
            "slos": [slo],
            "load": [load],
            "chaos": [],
        },
        {
            "nodeid": "t.py::test_<bad>&",
            "outcome": "failed",
            "duration": 3.0,
            "window": {"start": 1011.0, "end": 1014.0, "seconds": 3.0},
            "slos": [bad],
            "load": [],
            "chaos": [{"kind": "pod-kill", "target": "engine"}],
            "bundle": "/r/bundles/x",
            "longrepr": "<script>x</script>",
        },
    ]


def test_summary_has_per_test_fields_totals_and_ready_seconds(tmp_path: pathlib.Path) -> None:
    data = summary.build(
        _records(), platform={"ready_seconds": 7.1}, cluster="local", profile="local", started=990.0
    )
    path = summary.write(data, tmp_path)
    loaded = json.loads(path.read_text())  # strict JSON: NaN became null
    assert loaded["platform"]["ready_seconds"] == 7.1
    assert loaded["totals"] == {
        "tests": 2,
        "outcomes": {"passed": 1, "failed": 1},
        "slos": 2,
        "slos_failed": 1,
    }
    first, second = loaded["tests"]
    assert set(first) >= {"nodeid", "outcome", "window", "slos", "load", "chaos"}
    assert set(first["slos"][0]) >= {"name", "query", "observed", "threshold", "comparator", "passed"}
    assert second["slos"][0]["observed"] is None
    assert not list(tmp_path.glob("*.tmp"))


def test_summary_without_platform_says_so() -> None:
    data = summary.build([], platform=None, cluster="local", profile="local", started=0.0)
    assert data["platform"] == {"ready_seconds": None}


def test_html_is_self_contained_and_escaped(tmp_path: pathlib.Path) -> None:
    records = _records()
    records[1]["bundle"] = str(tmp_path / "bundles" / "x")
    data = summary.build(
        records, platform={"ready_seconds": 7.1}, cluster="local", profile="local", started=0
    )
    page = html.write(data, tmp_path).read_text()
    assert page.startswith("<!doctype html>")
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert "test_&lt;bad&gt;&amp;" in page
    assert "<link" not in page
    assert "src=" not in page
    assert "p99_order_latency_ms" in page
    assert "no data" in page
    assert "7.1 s" in page
    assert "pod-kill" in page
    assert "href='bundles/x'" in page  # relative: the report directory can be moved or archived


def test_bundle_collects_pods_events_logs_and_promql(tmp_path: pathlib.Path) -> None:
    cluster = ScriptedCluster(never_ready=["engine"])
    slos = _records()[1]["slos"]
    path, text = bundle.collect(
        cluster, nodeid="t.py::test_x[a/b]", directory=tmp_path, slos=slos, error="boom"
    )
    assert path == tmp_path / "bundles" / "t.py_test_x_a_b"
    assert json.loads((path / "pods.json").read_text())[1]["name"] == "engine-0"
    assert (path / "logs" / "engine-0.log").read_text().endswith("boom, connection refused")
    assert json.loads((path / "events.json").read_text())[0]["reason"] == "BackOff"
    assert json.loads((path / "promql.json").read_text())["slos"][0]["query"].startswith("sum(rate(")
    assert (path / "error.txt").read_text() == "boom"
    assert "[MISS] p99_order_latency_ms" in text
    assert "engine: waiting (CrashLoopBackOff) restarts=3" in text
    assert "last probe error: Readiness probe failed" in text


class _Broken(ScriptedCluster):
    def pods(self):
        raise ConnectionError("api server gone")


def test_bundle_survives_a_broken_cluster(tmp_path: pathlib.Path) -> None:
    path, text = bundle.collect(_Broken(), nodeid="t::x", directory=tmp_path)
    assert "(pods unavailable: ConnectionError: api server gone)" in text
    assert (path / "events.json").exists()
    path2, text2 = bundle.collect(None, nodeid="t::y", directory=tmp_path)
    assert "no cluster handle" in text2
    assert (path2 / "promql.json").exists()


def test_html_tables_chaos_and_the_resilience_digest() -> None:
    chaos = {
        "experiment": "stress-cpu <backend>",
        "kind": "StressChaos",
        "action": "cpu",
        "window": {"start": 0.0, "end": 10.0},
        "containers": ["backend-0/backend"],
        "intensity": [{"observed": 0.05, "expected": 0.3, "unit": "cores", "reached": False}],
        "intensity_reached": False,
    }
    digest = [
        {
            "experiment": "pod-kill engine",
            "outcome": "passed",
            "recovery_s": 0.68,
            "acked_vs_stored": {"acked": 5770, "stored": 5770, "lost": 0, "duplicated": 0},
            "engine_restarts": 1,
        },
        {"experiment": "scale4", "outcome": "failed", "throughput": 2585.2},
    ]
    page = html.render(
        {"tests": [{"nodeid": "t", "outcome": "passed", "chaos": [chaos]}], "resilience": digest}
    )
    assert "stress-cpu &lt;backend&gt;" in page
    assert "0.05 / 0.3 cores" in page
    assert "<td>NO</td>" in page  # an intensity that was not reached is shown as such
    assert "<td>0.68</td><td>5770 / 5770 / 0 / 0</td>" in page
    assert "2,585 orders/s" in page
    assert "<tr class='bad'><td>scale4</td><td>failed</td>" in page
