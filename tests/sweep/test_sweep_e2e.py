"""A small scaling sweep end to end (``slow``): ``-m sweep`` on the real embedded local cluster, as a
user runs it, with N in {1, 2}, 2-second probes and a 90-second budget; then sweep.json holds every
point with its probes and a bottleneck verdict, and nothing is left behind."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local cluster needs root (mount namespaces, cgroups)"),
    pytest.mark.skipif(
        shutil.which("postgres") is None and not pathlib.Path("/usr/lib/postgresql/15/bin/postgres").exists(),
        reason="needs Debian's postgresql 15",
    ),
]

BUDGET_S = 90


#: A local cluster's runtime directory: /tmp/hftk8s-<run id, 8 hex>-<mkdtemp suffix>/.
RUNTIME_DIR = re.compile(r"/tmp/hftk8s-[0-9a-f]{8}-")


def _local_cluster_processes() -> set[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if RUNTIME_DIR.search(line)}


def test_small_sweep_on_the_local_cluster(pytester: pytest.Pytester, base_args: list[str]) -> None:
    before = _local_cluster_processes()
    began = time.monotonic()
    result = pytester.runpytest_subprocess(
        *base_args,
        "--hft-cluster=local",
        "-m",
        "sweep",
        "--pyargs",
        "pytest_hftk8s.suites",
        "--hft-sweep-backends=1,2",
        f"--hft-sweep-budget={BUDGET_S}",
        "--hft-sweep-probe-seconds=2",
        "-p",
        "no:randomly",
        timeout=240,
    )
    took = time.monotonic() - began
    out = result.stdout.str()
    result.assert_outcomes(passed=1, deselected=9)
    result.stdout.fnmatch_lines(["*[[]hftk8s[]] sweep: N=1 backends*", "*[[]hftk8s[]] sweep: N=2: *"])

    sweep = json.loads((pytester.path / "hft-report" / "sweep.json").read_text())
    assert [p["backends"] for p in sweep["points"]] == [1, 2], out
    assert sweep["took_s"] <= BUDGET_S, sweep["took_s"]
    assert sweep["criteria"]["client_p99_ms"] == 100
    assert sweep["criteria"]["min_throughput_ratio"] == 0.95
    for point in sweep["points"]:
        assert point["max_rate"] is not None, point
        assert point["probes"], point
        assert point["deploy_s"] > 0
        best = [p for p in point["probes"] if p["sustainable"] and p["offered_rate"] == point["max_rate"]]
        assert best, point
        assert best[0]["client_p99_ms"] <= 100
        assert best[0]["throughput_ratio"] >= 0.95
        assert all(p["reasons"] for p in point["probes"] if not p["sustainable"])
    assert sweep["fit"] is None  # two points cannot determine three parameters: said, not invented
    assert "no USL fit: expected at least 3 distinct replica counts" in sweep["sentence"]
    assert sweep["knee"] in (1, 2)
    knee = next(p for p in sweep["points"] if p["backends"] == sweep["knee"])
    assert "bottleneck" in sweep
    if sweep["bottleneck"] is not None:  # None only when the attribution module is absent
        assert sweep["bottleneck"] == knee["bottleneck"]
        assert sweep["bottleneck"]["verdict"]
        assert sweep["bottleneck"]["sentence"] in sweep["sentence"]
    assert sweep["sentence"].startswith(f"ceiling {knee['throughput']:,.0f} requests/s")

    # The probes are the test's load runs, in its record.
    summary = json.loads((pytester.path / "hft-report" / "summary.json").read_text())
    (test,) = summary["tests"]
    assert test["sweep"]["points"] == sweep["points"]
    probe_runs = {p["load"] for point in sweep["points"] for p in point["probes"]}
    assert probe_runs <= {load["name"] for load in test["loads"]}
    print(f"sweep took {took:.0f}s: {sweep['sentence']}")

    deadline = time.monotonic() + 20
    while (left := _local_cluster_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"left behind: {sorted(left)}"
