"""A run killed outright (SIGKILL, no teardown) is swept by the next LocalCluster before it deploys."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from local_workloads import NEEDS_ROOT, alive, hft_cgroups, http_server

from pytest_hftk8s.cluster.local import LocalCluster, sweep

pytestmark = [NEEDS_ROOT, pytest.mark.slow]

DOOMED_RUN = """
import json, pathlib, sys, time
from pytest_hftk8s.cluster.local import LocalCluster
cluster = LocalCluster(namespace="t", state_dir=pathlib.Path(sys.argv[1]))
cluster.apply(json.loads(sys.argv[2]))
deadline = time.monotonic() + 15
while not all(w.is_available for w in cluster.workloads()) and time.monotonic() < deadline:
    time.sleep(0.05)
pids = [pid for p in cluster.pods() for pid in cluster.container_pids(p.name).values()]
print(json.dumps({"run_id": cluster.run_id, "runtime": str(cluster.runtime_dir), "pids": pids}), flush=True)
time.sleep(60)
"""


def test_killed_run_is_swept_by_the_next_cluster(
    tmp_path: Path, make_cluster: Callable[..., LocalCluster]
) -> None:
    state_dir = tmp_path / "state"
    objects = [http_server("orphan", replicas=2)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    doomed = subprocess.Popen(
        [sys.executable, "-c", DOOMED_RUN, str(state_dir), json.dumps(objects)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = doomed.stdout.readline() if doomed.stdout else ""  # bounded by the script's own 15 s deadline
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        assert line, "the doomed run printed nothing"
        run = json.loads(line)
        assert len(run["pids"]) == 2
        # Killed outright: its pods, cgroups and directories are still there.
        assert all(alive(pid) for pid in run["pids"])
        assert Path(run["runtime"]).exists()
        assert list(state_dir.glob("local-*.json"))

        cluster = make_cluster()  # same state_dir: sweeps before it deploys
        assert len(cluster.swept) == 1
        assert run["run_id"] in cluster.swept[0]
        assert not any(alive(pid) for pid in run["pids"])
        assert hft_cgroups(run["run_id"]) == []
        assert not Path(run["runtime"]).exists()
        assert [p.name for p in state_dir.glob("local-*.json")] == [f"local-{cluster.run_id}.json"]
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait(timeout=10)
        if doomed.stdout:
            doomed.stdout.close()
        sweep(state_dir)


def test_sweep_leaves_live_runs_alone(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster()
    cluster.apply([http_server("alive")])
    assert sweep(cluster.state_dir) == []  # its owner (this process) is alive
    assert cluster.runtime_dir.exists()
