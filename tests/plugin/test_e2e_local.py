"""The main job end to end: the bundled suite on the real embedded LocalCluster, as a user runs it
(``pytest --hft-cluster=local --pyargs pytest_hftk8s.suites``), then nothing left behind."""

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
        timeout=300,
    )
    out = result.stdout.str()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["*[[]hftk8s[]] pod * starting*", "*[[]hftk8s[]] load baseline: offered 300/s, current*"]
    )
    summary = json.loads((pytester.path / "hft-report" / "summary.json").read_text())
    assert summary["platform"]["ready_seconds"] < 60, out
    slos = {s["name"]: s for t in summary["tests"] for s in t["slos"]}
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
