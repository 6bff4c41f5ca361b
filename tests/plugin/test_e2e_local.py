"""The main job end to end: the bundled suites (baseline + resilience) on the real embedded
LocalCluster, as a user runs them (``pytest --hft-cluster=local --pyargs pytest_hftk8s.suites``),
then nothing left behind. One full run serves both suites' checks (it is the slowest test)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

pytestmark = pytest.mark.slow


def _hft_leftovers() -> set[str]:
    """Processes running from a local-cluster runtime dir, cgroups named hft*, state files."""
    left = set()
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    left.update(line.strip() for line in out.splitlines() if "/tmp/hftk8s-" in line)
    for root in (pathlib.Path("/sys/fs/cgroup/cpu"), pathlib.Path("/sys/fs/cgroup/memory")):
        if root.is_dir():
            left.update(
                str(p) for depth in ("*", "*/*", "*/*/*") for p in root.glob(depth + "/") if "hft" in p.name
            )
    state = pathlib.Path(tempfile.gettempdir()) / "hftk8s-state"
    if state.is_dir():
        left.update(str(p) for p in state.iterdir())
    return left


@pytest.mark.skipif(os.geteuid() != 0, reason="the local cluster needs root (mount namespaces, cgroups)")
@pytest.mark.skipif(
    shutil.which("postgres") is None and not pathlib.Path("/usr/lib/postgresql/15/bin/postgres").exists(),
    reason="needs Debian's postgresql 15",
)
def test_bundled_suite_on_local_cluster(pytester: pytest.Pytester, base_args: list[str]) -> None:
    before = _hft_leftovers()
    result = pytester.runpytest_subprocess(
        *base_args,
        "--hft-cluster=local",
        "--pyargs",
        "pytest_hftk8s.suites",
        "-p",
        "no:randomly",
        timeout=600,
    )
    out = result.stdout.str()
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(
        ["*[[]hftk8s[]] pod * starting*", "*[[]hftk8s[]] load baseline: offered 300/s, current*"]
    )
    summary = json.loads((pytester.path / "hft-report" / "summary.json").read_text())
    assert summary["platform"]["ready_seconds"] < 60, out
    baseline_tests = [t for t in summary["tests"] if "test_baseline.py" in t["nodeid"]]
    slos = {s["name"]: s for t in baseline_tests for s in t["slos"]}
    assert set(slos) == {
        "throughput",
        "p99_order_latency_ms",
        "registration_success",
        "no_crashloopbackoff",
        "bounded_restarts",
        "no_oomkilled",
    }
    assert all(s["passed"] for s in slos.values()), slos
    assert (pytester.path / "hft-report" / "index.html").exists()
    _check_resilience(summary)
    print(
        f"ready_seconds={summary['platform']['ready_seconds']:.2f} "
        + " ".join(
            f"{t['nodeid'].split('::')[-1]}:overhead={t.get('plugin_overhead_s')}" for t in summary["tests"]
        )
    )
    # Teardown is synchronous, so our run's processes, cgroups and state file are gone already; the
    # bounded re-check only lets a *concurrent* local cluster (another session on this machine) end.
    deadline = time.monotonic() + 20
    while (left := _hft_leftovers() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"left behind: {sorted(left)}"


def _check_resilience(summary: dict) -> None:
    """summary.json carries each experiment's window, intensity, recovery and acked-vs-stored counts."""
    assert summary["baseline"]["achieved_rate"] > 0
    chaos = {c["experiment"]: c for t in summary["tests"] for c in t.get("chaos", [])}
    for name in ("stress-cpu backend", "stress-memory backend"):
        entry = chaos[name]
        assert entry["window"]["seconds"] > 1, entry["window"]
        assert entry["intensity_reached"] is True, entry["intensity"]
    assert chaos["stress-cpu backend"]["probes"]["rounds"], "the continuous probe never ran"
    assert chaos["stress-cpu backend"]["throughput"]["capacity_ratio"] > 0
    assert chaos["stress-memory backend"]["oom_sequence"]["detected"] is True
    for target in ("backend", "engine", "postgres"):
        entry = chaos[f"pod-kill {target}"]
        assert entry["injected"] is True
        assert entry["recovery"]["recovery_s"] is not None, entry["recovery"]
        acks = entry["acked_vs_stored"]
        assert acks["acked"] > 0
        assert acks["lost"] == 0
        assert acks["duplicated"] == 0
        assert acks["acked_stored"] == acks["acked"]
    scaled = next(e for e in chaos.values() if e["experiment"].startswith("scale4"))
    assert scaled["engine_restarts"] == 0
    assert scaled["load"]["achieved_rate"] > 0
