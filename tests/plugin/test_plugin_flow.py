"""The plugin's whole flow in inner pytest sessions: deploy once, gate, load, SLOs from a real
Prometheus scraping a real exporter, JUnit properties, summary.json/index.html, failure bundles,
teardown (also on Ctrl-C and gate timeout) and sharing across xdist workers.

The cluster is the scripted in-memory one (the allowed stand-in for a cluster API), handed in
through the ``pytest_hftk8s_make_cluster`` hook; the exporter plays nginx and the platform's /metrics.
"""

from __future__ import annotations

import itertools
import json
import pathlib
import time
import xml.etree.ElementTree as ET

import pytest
from slo_servers import Exporter, Prometheus

pytestmark = pytest.mark.slow

GATE_DIR = pathlib.Path(__file__).resolve().parents[1] / "gate"


def _conftest(
    pytester: pytest.Pytester, servers: tuple[Exporter, Prometheus], **cluster: object
) -> pathlib.Path:
    exporter, prom = servers
    journal = pytester.path / "journal.jsonl"
    kwargs = ", ".join(f"{k}={v!r}" for k, v in cluster.items())
    pytester.makeconftest(
        f"""
        import pathlib, sys
        sys.path.insert(0, {str(GATE_DIR)!r})
        from scripted_cluster import ScriptedCluster

        def pytest_hftk8s_make_cluster(settings, state_dir, progress):
            progress("scripted cluster for " + settings.cluster)
            return ScriptedCluster(
                namespace=settings.namespace, nginx=("127.0.0.1", {exporter.port}),
                prometheus_url={prom.url!r}, journal=pathlib.Path({str(journal)!r}), {kwargs})
        """
    )
    return journal


def _calls(journal: pathlib.Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in journal.read_text().splitlines()] if journal.exists() else []


def test_flow_pass_fail_report_junit_bundle_teardown(
    pytester: pytest.Pytester, base_args: list[str], servers: tuple[Exporter, Prometheus]
) -> None:
    journal = _conftest(pytester, servers)
    pytester.makepyfile(
        test_inner_flow="""
        import pytest

        @pytest.mark.hft_slo(name="accepted_rate", comparator=">=", threshold=100,
                             expr='sum(rate(hft_orders_total{outcome="accepted"}[$window]))')
        def test_pass(hft_load, hft_slo):
            with hft_load.constant_rate(rate=300, duration=2.5, connections=4) as run:
                pass
            assert run.summary.valid, run.summary.invalid_reasons
            hft_slo.check(hft_slo.builtin.throughput(min_ratio=0.9))

        @pytest.mark.hft_slo("p99_latency", max_ms=0.5)
        def test_fail(hft_load):
            with hft_load.constant_rate(rate=100, duration=2, connections=2):
                pass
        """
    )
    result = pytester.runpytest(
        *base_args, "--hft-cluster=scripted", "--junitxml=junit.xml", "--hft-gate-timeout=20"
    )
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*[[]hftk8s[]] gate warmup: passed*",
            "*SloViolation: 1 SLO(s) did not hold:",
            "*p99_order_latency_ms: expected <= 0.5 ms, observed *",
            "*query: 1000 * histogram_quantile(0.99, sum by (le) (rate(hft_order_latency_seconds_bucket[[]*ms[]])))",
            "*dashboard: panel * of *hft-report/dashboards/platform.json, *ms; pass --hft-grafana-url*",
            "*report: *hft-report/index.html",
            "*hftk8s failure bundle*",
            "*orders_by_outcome: accepted=*",
            "*pod engine-0: Running ready=True*",
            "*event Pod/engine-0 BackOff*",
            "platform ready after *s (deploy + all gates)",
            "summary: *hft-report/summary.json",
        ]
    )
    assert "accepted_rate" not in out.split("short test summary")[-1]

    summary = json.loads((pytester.path / "hft-report" / "summary.json").read_text())
    assert summary["cluster"] == "scripted"
    assert 0 < summary["platform"]["ready_seconds"] < 20
    assert set(summary["platform"]["gates"]) == {"workloads", "endpoints", "dns", "warmup"}
    tests = {t["nodeid"].split("::")[-1]: t for t in summary["tests"]}
    passed, failed = tests["test_pass"], tests["test_fail"]
    assert (passed["outcome"], failed["outcome"]) == ("passed", "failed")
    names = [s["name"] for s in passed["slos"]]
    assert names == ["throughput", "accepted_rate"]
    for slo in passed["slos"]:
        assert set(slo) >= {"name", "query", "observed", "threshold", "comparator", "passed"}
        assert slo["passed"] is True
    assert 0.9 <= passed["slos"][0]["observed"] <= 1.1
    assert passed["loads"][0]["offered_rate"] == 300
    assert passed["loads"][0]["registrations_ok"] == 8
    assert passed["window"]["seconds"] >= 2.5
    assert failed["slos"][0]["passed"] is False
    # A missed latency SLO names what was saturated (or says it cannot tell), from the same window.
    assert failed["bottleneck"]["verdict"], failed["bottleneck"]
    assert failed["bottleneck"]["signals"], failed["bottleneck"]
    assert "bottleneck" not in passed or passed["bottleneck"] is None
    assert {s["name"] for s in failed["series"]} >= {"accepted_rate", "server_p99_ms"}
    dashboard = json.loads((pytester.path / "hft-report" / "dashboards" / "platform.json").read_text())
    assert dashboard["uid"] == "hftk8s-platform"
    bundle = pathlib.Path(failed["bundle"])
    assert (bundle / "pods.json").exists()
    assert (bundle / "logs" / "engine-0.log").read_text().endswith("boom, connection refused")
    promql = json.loads((bundle / "promql.json").read_text())
    assert promql["slos"][0]["name"] == "p99_order_latency_ms"
    diagnostics = {d["name"]: d for d in promql["diagnostics"]}
    (accepted,) = [
        r for r in diagnostics["orders_by_outcome"]["rows"] if r["labels"] == {"outcome": "accepted"}
    ]
    assert accepted["value"] >= 150  # ~200 orders in the failed test's window, from the real Prometheus

    page = (pytester.path / "hft-report" / "index.html").read_text()
    assert "test_fail" in page
    assert "p99_order_latency_ms" in page
    assert "<script" not in page
    assert "http" not in page.split("<body>")[1].replace("http://127.0.0.1", "")  # no external assets

    props = {
        p.get("name"): p.get("value")
        for p in ET.parse(pytester.path / "junit.xml").getroot().iter("property")
    }
    assert float(props["hft_slo.accepted_rate"]) >= 100
    assert props["hft_slo.p99_order_latency_ms.passed"] == "False"

    calls = [c["call"] for c in _calls(journal)]
    assert calls.count("delete_all") == 1
    # preflight, then the sweep of what earlier runs left, then the apply of the rendered overlay
    assert calls[0].startswith("preflight ")
    assert calls[1:3] == ["sweep", calls[2]]
    assert calls[2].startswith("apply ")
    assert int(calls[2].split()[1]) > 10  # the real rendered overlay, plus the generated Secret


def test_gate_timeout_fails_setup_and_still_tears_down(
    pytester: pytest.Pytester, base_args: list[str], servers: tuple[Exporter, Prometheus]
) -> None:
    journal = _conftest(pytester, servers, never_ready=["engine"])
    pytester.makepyfile(test_inner_gate_timeout="def test_needs_platform(hft_platform):\n    pass\n")
    result = pytester.runpytest(*base_args, "--hft-cluster=scripted", "--hft-gate-timeout=0.6")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*GateTimeout: readiness gate 'workloads' did not pass within 0.6s.",
            "*seen: not available: Deployment/engine 0/1*",
            "*last probe error: Readiness probe failed*",
        ]
    )
    assert [c["call"] for c in _calls(journal)][-2:] == ["delete_all", "close"]


def test_ctrl_c_in_a_test_still_tears_down(
    pytester: pytest.Pytester, base_args: list[str], servers: tuple[Exporter, Prometheus]
) -> None:
    journal = _conftest(pytester, servers)
    pytester.makepyfile(
        test_inner_interrupt="""
        def test_interrupted(hft_platform):
            raise KeyboardInterrupt

        def test_never_reached(hft_platform):
            pass
        """
    )
    result = pytester.runpytest_subprocess(*base_args, "--hft-cluster=scripted", timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    calls = [c["call"] for c in _calls(journal)]
    assert calls.count("delete_all") == 1


def test_xdist_workers_share_one_deployment(
    pytester: pytest.Pytester, base_args: list[str], servers: tuple[Exporter, Prometheus]
) -> None:
    pytest.importorskip("xdist")
    journal = _conftest(pytester, servers)
    pytester.makepyfile(
        test_inner_shared="""
        import time
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_uses_platform(hft_platform, n):
            time.sleep(0.3)
            assert hft_platform.nginx[0] == "127.0.0.1"
        """
    )
    result = pytester.runpytest_subprocess(*base_args, "--hft-cluster=scripted", "-n", "2", timeout=180)
    result.assert_outcomes(passed=4)
    calls = _calls(journal)
    applies = [c for c in calls if str(c["call"]).startswith("apply")]
    deletes = [c for c in calls if c["call"] == "delete_all"]
    assert len(applies) == 1, calls
    assert len(deletes) == 1, calls
    assert deletes[0]["pid"] == applies[0]["pid"]
    assert deletes[0]["t"] == max(c["t"] for c in calls if c["call"] != "close")
    summary = json.loads((pytester.path / "hft-report" / "summary.json").read_text())
    assert summary["totals"]["outcomes"] == {"passed": 4}
    assert summary["platform"]["ready_seconds"] > 0


def test_xdist_workers_take_turns_to_measure(
    pytester: pytest.Pytester, base_args: list[str], servers: tuple[Exporter, Prometheus]
) -> None:
    pytest.importorskip("xdist")
    _conftest(pytester, servers)
    pytester.makepyfile(
        test_inner_turns="""
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_load(hft_load, n):
            with hft_load.constant_rate(rate=100, duration=1, connections=2, users=1, name=f"load{n}") as run:
                pass
            assert run.summary.valid, run.summary.invalid_reasons
        """
    )
    result = pytester.runpytest_subprocess(*base_args, "--hft-cluster=scripted", "-n", "2", timeout=120)
    result.assert_outcomes(passed=4)
    summary = json.loads((pytester.path / "hft-report" / "summary.json").read_text())
    windows = sorted((t["window"]["start"], t["window"]["end"], t["nodeid"]) for t in summary["tests"])
    assert len(windows) == 4
    for (_, end, first), (start, _, second) in itertools.pairwise(windows):
        # One measurement at a time across both workers: no test's window holds another's load.
        assert end <= start, f"{first} and {second} measured at the same time"


def test_hft_load_marker_gives_the_tests_defaults(
    pytester: pytest.Pytester, base_args: list[str], servers: tuple[Exporter, Prometheus]
) -> None:
    _conftest(pytester, servers)
    pytester.makepyfile(
        test_inner_marker="""
        import pytest

        @pytest.mark.hft_load(rate=120, duration=1, connections=2, users=1)
        def test_defaults(hft_load):
            with hft_load.constant_rate() as run:
                pass
            assert (run.summary.offered_rate, run.summary.duration_s, run.summary.users) == (120, 1, 1)
            with hft_load.constant_rate(rate=60) as faster:  # a call overrides the marker
                pass
            assert faster.summary.offered_rate == 60

        @pytest.mark.hft_load(rate=100, duraton=1)
        def test_typo(hft_load):
            pass

        def test_no_marker_no_rate(hft_load):
            hft_load.constant_rate(duration=1)
        """
    )
    result = pytester.runpytest(*base_args, "--hft-cluster=scripted")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*hft_load marker: unknown keywords [[]'duraton'[]]*",
            "*an open-loop run needs a rate and a duration*@pytest.mark.hft_load(rate=..., duration=...)*",
        ]
    )


def test_keep_skips_teardown(
    pytester: pytest.Pytester, base_args: list[str], servers: tuple[Exporter, Prometheus]
) -> None:
    journal = _conftest(pytester, servers)
    pytester.makepyfile(test_inner_keep="def test_uses(hft_platform):\n    pass\n")
    result = pytester.runpytest(*base_args, "--hft-cluster=scripted", "--hft-keep")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*--hft-delete=never: leaving the platform running in namespace hft*"])
    calls = [c["call"] for c in _calls(journal)]
    assert "delete_all" not in calls
    assert calls[-2:] == ["sweep", "close"], "chaos and volumes are swept even when the platform stays"


@pytest.mark.parametrize(("fail", "deleted"), [(False, True), (True, False)])
def test_delete_on_success_keeps_a_failed_sessions_platform(
    pytester: pytest.Pytester,
    base_args: list[str],
    servers: tuple[Exporter, Prometheus],
    fail: bool,
    deleted: bool,
) -> None:
    journal = _conftest(pytester, servers)
    pytester.makepyfile(
        test_inner_on_success=f"""
        def test_one(hft_platform):
            pass

        def test_two(hft_platform):
            assert not {fail}, "a test failed"
        """
    )
    result = pytester.runpytest(*base_args, "--hft-cluster=scripted", "--hft-delete=on-success")
    result.assert_outcomes(passed=1 + (not fail), failed=int(fail))
    calls = [c["call"] for c in _calls(journal)]
    assert ("delete_all" in calls) is deleted
    assert calls.count("sweep") == 2, calls  # before deploying and at teardown, whatever the policy
    applies = [i for i, c in enumerate(calls) if c.startswith("apply ")]
    assert applies
    assert calls.index("sweep") < applies[0]
    if fail:
        result.stdout.fnmatch_lines(["*--hft-delete=on-success and a test failed: leaving the platform*"])


def test_preflight_runs_first_and_a_missing_prerequisite_deploys_nothing(
    pytester: pytest.Pytester, base_args: list[str], servers: tuple[Exporter, Prometheus]
) -> None:
    journal = _conftest(pytester, servers, preflight_fails="Chaos Mesh")
    pytester.makepyfile(test_inner_preflight="def test_uses(hft_platform):\n    pass\n")
    began = time.monotonic()
    result = pytester.runpytest(*base_args, "--hft-cluster=scripted")
    assert time.monotonic() - began < 30
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*PreflightFailed*nothing was deployed*", "*Chaos Mesh*FAIL*helm install*"])
    calls = [c["call"] for c in _calls(journal)]
    assert calls[0].startswith("preflight")
    assert not [c for c in calls if c.startswith("apply")]


@pytest.mark.parametrize("fails", ["", "Chaos Mesh"])
def test_hft_preflight_alone_prints_the_table_and_exits(
    pytester: pytest.Pytester, base_args: list[str], servers: tuple[Exporter, Prometheus], fails: str
) -> None:
    journal = _conftest(pytester, servers, preflight_fails=fails)
    pytester.makepyfile(test_inner_never="def test_never_collected(hft_platform):\n    pass\n")
    result = pytester.runpytest(*base_args, "--hft-cluster=scripted", "--hft-preflight")
    assert result.ret == (1 if fails else 0)
    result.stdout.fnmatch_lines(["*preflight of scripted*", "*context reachable*ok*"])
    if fails:
        result.stdout.fnmatch_lines(["*Chaos Mesh*FAIL*", "*1 prerequisite(s) missing*"])
    else:
        result.stdout.fnmatch_lines(["*every prerequisite is in place*"])
    calls = [c["call"] for c in _calls(journal)]
    assert [c for c in calls if not c.startswith(("preflight", "close"))] == [], calls


def test_slo_file_applies_to_load_tests_and_warnings_do_not_fail(
    pytester: pytest.Pytester, base_args: list[str], servers: tuple[Exporter, Prometheus]
) -> None:
    _conftest(pytester, servers)
    pytester.path.joinpath("alerts.yml").write_text(
        """
- expr: sum(rate(hft_orders_total{outcome="rejected"}[$window])) > 0
  description: orders rejected
  severity: error
- expr: sum(rate(hft_orders_total{outcome="accepted"}[2s])) > 1
  description: any orders at all (a warning that fires)
  severity: warning
"""
    )
    pytester.makepyfile(
        test_inner_file_slos="""
        def test_with_load(hft_load):
            with hft_load.constant_rate(rate=200, duration=2, connections=4):
                pass

        def test_without_load(hft_platform):
            pass
        """
    )
    result = pytester.runpytest(*base_args, "--hft-cluster=scripted", "--hft-slo-file=alerts.yml")
    result.assert_outcomes(passed=2)
    summary = json.loads((pytester.path / "hft-report" / "summary.json").read_text())
    tests = {t["nodeid"].split("::")[-1]: t for t in summary["tests"]}
    with_load = {s["name"]: s for s in tests["test_with_load"]["slos"]}
    assert with_load["orders_rejected"]["comparator"] == "fires"
    assert with_load["orders_rejected"]["passed"] is True  # silent, and its series exist
    assert with_load["orders_rejected"]["extra"]["required_series"] == 'hft_orders_total{outcome="rejected"}'
    warning = with_load["any_orders_at_all_a_warning_that_fires"]
    assert (warning["severity"], warning["passed"]) == ("warning", False)
    assert tests["test_without_load"].get("slos", []) == []
