"""summary.json and index.html from typed records; failure bundles from the cluster contract."""

from __future__ import annotations

import json
import math
import pathlib

from scripted_cluster import ScriptedCluster

from pytest_hftk8s.orchestration import bundle
from pytest_hftk8s.report import html, summary
from pytest_hftk8s.results import (
    AckCheck,
    ChaosRecord,
    Intensity,
    LoadSummary,
    PlatformInfo,
    Recovery,
    SessionReport,
    SloResult,
    TestRecord,
    Window,
    from_dict,
)

PLATFORM = PlatformInfo(
    cluster="local", namespace="hft", nginx="http://x:80", prometheus_url="http://p", ready_seconds=7.1
)


def _slo(**overrides: object) -> SloResult:
    values: dict[str, object] = {
        "name": "throughput",
        "query": 'sum(rate(hft_orders_total{outcome="accepted"}[10000ms])) / 300',
        "comparator": ">=",
        "threshold": 0.95,
        "observed": 0.97,
        "passed": True,
        "window": Window(1000.0, 1010.0),
        "unit": "ratio",
    }
    values.update(overrides)
    return SloResult(**values)  # type: ignore[arg-type]


def _load(name: str = "baseline", achieved: float = 299.5) -> LoadSummary:
    w = Window(1000.0, 1010.0)
    return LoadSummary(
        name=name, mode="open", offered_rate=300, duration_s=10, window=w, order_window=w, users=8,
        registrations_ok=8, registrations_failed=0, scheduled=3000, sent=3000, completed=3000, ok=2995,
        achieved_rate=achieved, statuses={"200": 2995}, errors={}, latency_ms={"p50": 2.0, "p99": 9.5},
        cpu={"utilization": 0.1}, schedule={}, valid=True, mix={"limit": 0.6, "cancel": 0.25, "cross": 0.15},
    )  # fmt: skip


def _records() -> list[TestRecord]:
    bad = _slo(name="p99_order_latency_ms", observed=math.nan, passed=False, message="no data")
    return [
        TestRecord(nodeid="t.py::test_ok", duration=10.2, window=Window(1000.0, 1010.0), slos=[_slo()],
                   loads=[_load()], rates={"orders_per_s": 224.6, "fills_per_s": 61.3}),
        TestRecord(nodeid="t.py::test_<bad>&", outcome="failed", duration=3.0, window=Window(1011.0, 1014.0),
                   slos=[bad], chaos=[ChaosRecord(experiment="pod-kill engine", kind="PodChaos")],
                   bundle="/r/bundles/x", longrepr="<script>x</script>"),
    ]  # fmt: skip


def _report(records: list[TestRecord]) -> SessionReport:
    return summary.build(records, platform=PLATFORM, cluster="local", profile="local", started=990.0)


def test_summary_has_per_test_fields_totals_and_ready_seconds(tmp_path: pathlib.Path) -> None:
    path = summary.write(_report(_records()), tmp_path)
    loaded = json.loads(path.read_text())  # strict JSON: NaN became null
    assert loaded["platform"]["ready_seconds"] == 7.1
    assert loaded["totals"] == {
        "tests": 2,
        "outcomes": {"passed": 1, "failed": 1},
        "slos": 2,
        "slos_failed": 1,
    }
    first, second = loaded["tests"]
    assert set(first) >= {"nodeid", "outcome", "window", "slos", "loads", "chaos", "rates"}
    assert set(first["slos"][0]) >= {"name", "query", "observed", "threshold", "comparator", "passed"}
    assert first["rates"] == {"orders_per_s": 224.6, "fills_per_s": 61.3}
    assert first["loads"][0]["mix"] == {"limit": 0.6, "cancel": 0.25, "cross": 0.15}
    assert second["slos"][0]["observed"] is None
    assert not list(tmp_path.glob("*.tmp"))
    # What summary.json holds reads back as the same typed report.
    again = from_dict(SessionReport, loaded)
    assert again.tests[0].loads[0] == _records()[0].loads[0]


def test_summary_without_platform_says_so() -> None:
    report = summary.build([], platform=None, cluster="local", profile="local", started=0.0)
    assert report.platform is None
    assert "ready after</th><td>no data s" in html.render(report)


def test_html_is_self_contained_and_escaped(tmp_path: pathlib.Path) -> None:
    records = _records()
    records[1].bundle = str(tmp_path / "bundles" / "x")
    page = html.write(_report(records), tmp_path).read_text()
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
    assert "61.3 fills/s" in page
    assert "href='bundles/x'" in page  # relative: the report directory can be moved or archived


def test_bundle_collects_pods_events_logs_and_promql(tmp_path: pathlib.Path) -> None:
    cluster = ScriptedCluster(never_ready=["engine"])
    slos = _records()[1].slos
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


def test_bundle_survives_a_broken_cluster_and_prometheus(tmp_path: pathlib.Path) -> None:
    path, text = bundle.collect(_Broken(), nodeid="t::x", directory=tmp_path)
    assert "(pods unavailable: ConnectionError: api server gone)" in text
    assert (path / "events.json").exists()
    path2, text2 = bundle.collect(None, nodeid="t::y", directory=tmp_path)
    assert "no cluster handle" in text2
    assert (path2 / "promql.json").exists()
    rows = bundle.diagnostics("http://127.0.0.1:9", Window(1.0, 2.0), namespace="hft")
    assert rows
    assert all("error" in r for r in rows)


def test_html_tables_chaos_and_the_resilience_digest() -> None:
    judged = Intensity(container="backend-0/backend", kind="cpu", unit="cores", requested=0.8, expected=0.3,
                       observed=0.05, reached=False, source="prometheus")  # fmt: skip
    cross = Intensity(container="backend-0/backend", kind="cpu", unit="cores", requested=0.8, expected=0.3,
                      observed=0.06, reached=False, source="cgroup")  # fmt: skip
    stress = ChaosRecord(
        experiment="stress-cpu <backend>", kind="StressChaos", action="cpu", window=Window(0.0, 10.0),
        containers=["backend-0/backend"], intensity=[judged], intensity_cross_check=[cross], intensity_reached=False,
    )  # fmt: skip
    kill = ChaosRecord(
        experiment="pod-kill engine", load="kill-engine", recovery=Recovery(fault_at=1, floor_rate=270, recovery_s=0.68),
        acked_vs_stored=AckCheck(acked=5770, stored=5770, acked_stored=5770, lost=0, duplicated=0, stored_not_acked=0),
        figures={"engine_restarts": 1},
    )  # fmt: skip
    records = [
        TestRecord(nodeid="t", chaos=[stress]),
        TestRecord(nodeid="k", outcome="failed", chaos=[kill], loads=[_load("kill-engine", 2585.2)]),
    ]
    page = html.render(_report(records))
    assert "stress-cpu &lt;backend&gt;" in page
    assert "0.05 / 0.3 cores" in page
    assert "0.06 / 0.3 cores" in page
    assert "<td>NO</td>" in page  # an intensity that was not reached is shown as such
    assert "<td>0.68</td><td>5770 / 5770 / 0</td>" in page
    assert "2,585 orders/s" in page
    assert "<tr class='bad'><td>pod-kill engine</td><td>failed</td>" in page
