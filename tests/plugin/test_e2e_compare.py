"""``--hft-repeat`` and ``--hft-compare`` as a user runs them, on the local cluster.

Two sessions of the bundled baseline test, two repeats each. The first is recorded; its summary is
then turned into a baseline that was 50% faster (its per-100 ms accepted counts scaled by 1.5), and
the second session is compared with it under ``--hft-fail-on-regression``: its tests pass, the
throughput is called regressed (about -33%), and the session fails. What it prints and writes -
terminal lines, the ``comparison`` block, the report's section, junit.xml beside the report and in
pytest's own ``--junitxml`` - is checked. The statistics themselves are in tests/slo/test_compare.py;
the A/A and A/B calibration is bench/regression_gate.py.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.slow

NEEDS_LOCAL_CLUSTER = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the local cluster needs root (mount namespaces, cgroups)"),
    pytest.mark.skipif(
        shutil.which("postgres") is None and not pathlib.Path("/usr/lib/postgresql/15/bin/postgres").exists(),
        reason="needs Debian's postgresql 15",
    ),
]
SELECT = ["--pyargs", "pytest_hftk8s.suites", "-k", "baseline_throughput", "--hft-repeat=2"]
CASE = "test_baseline.py::test_baseline_throughput_and_latency"


def _faster(summary: dict, factor: float) -> dict:
    """The same run, as if it had answered ``factor`` times as many requests every 100 ms."""
    out = json.loads(json.dumps(summary))
    for test in out["tests"]:
        for load in test["loads"]:
            if load.get("timeline"):
                load["timeline"]["values"] = [
                    v * factor if v is not None else v for v in load["timeline"]["values"]
                ]
    out["comparison"] = None
    return out


@NEEDS_LOCAL_CLUSTER[0]
@NEEDS_LOCAL_CLUSTER[1]
def test_repeat_then_compare_and_fail_on_a_regression(
    pytester: pytest.Pytester, base_args: list[str]
) -> None:
    first = pytester.runpytest_subprocess(*base_args, "--hft-cluster=local", *SELECT, timeout=600)
    first.assert_outcomes(passed=2)
    summary = json.loads((pytester.path / "hft-report" / "summary.json").read_text())
    assert summary["schema"] >= 3
    assert summary["repeat"] == 2
    assert sorted((t["repeat"], t["case"]) for t in summary["tests"]) == [(1, CASE), (2, CASE)]
    assert summary["identity"]["cores"] == os.cpu_count()
    assert summary["comparison"] is None  # nothing to compare with
    junit = ET.parse(pytester.path / "hft-report" / "junit.xml").getroot()
    slo_cases = junit.findall("./testsuite[@name='hftk8s.slo']/testcase")
    assert len(slo_cases) == sum(len(t["slos"]) for t in summary["tests"]) > 0

    baseline = pytester.path / "faster" / "hft-report"
    baseline.mkdir(parents=True)
    (baseline / "summary.json").write_text(json.dumps(_faster(summary, 1.5)))
    pytest_junit = pytester.path / "pytest-junit.xml"
    second = pytester.runpytest_subprocess(
        *base_args, "--hft-cluster=local", *SELECT, f"--hft-compare={baseline.parent}", "--hft-fail-on-regression",
        "--hft-report-dir=second", f"--junitxml={pytest_junit}", timeout=600,
    )  # fmt: skip
    second.assert_outcomes(passed=2)  # the tests held their SLOs...
    assert second.ret == pytest.ExitCode.TESTS_FAILED  # ...but the session regressed
    second.stdout.fnmatch_lines(
        [
            "*capacity: * requests/s closed loop; the suites offer the baseline run's *(--hft-compare)*",
            "compared with * at *faster*",
            "  regressed: * new regression(s)*",
            f"  REGRESSED {CASE}::baseline throughput: *",
            "  --hft-fail-on-regression: the session fails",
            "junit:   *second/junit.xml",
        ],
        consecutive=False,
    )
    compared = json.loads((pytester.path / "second" / "summary.json").read_text())
    offered = {t["loads"][0]["offered_rate"] for t in compared["tests"]}
    assert offered == {summary["capacity"]["offered_rate"]}  # the baseline's rate, not its own
    comparison = compared["comparison"]
    assert comparison["verdict"] == "regressed"
    assert comparison["fail_on_regression"] is True
    assert comparison["baseline"]["path"].endswith("faster")
    by_key = {m["key"]: m for m in comparison["measures"]}
    throughput = by_key[f"{CASE}::baseline::throughput"]
    assert throughput["verdict"] == "regressed", throughput
    assert throughput["effect"] == pytest.approx(1 / 1.5 - 1, abs=0.05)
    assert throughput["ci"][1] < -throughput["min_effect"]
    assert (throughput["repeats_baseline"], throughput["repeats_current"]) == (2, 2)
    assert f"{CASE}::baseline::client_p99_ms" in by_key  # latency from the same runs' histograms
    assert comparison["regressions"] == [f"{CASE}::baseline::throughput"]
    html = (pytester.path / "second" / "index.html").read_text()
    assert "Compared with" in html
    suites = {s.get("name"): s for s in ET.parse(pytest_junit).getroot().iter("testsuite")}
    assert {"pytest", "hftk8s.slo", "hftk8s.compare"} <= set(suites)
    compare_suite = suites["hftk8s.compare"]
    assert int(compare_suite.get("failures", "0")) >= 1  # the regression, as a failed case
