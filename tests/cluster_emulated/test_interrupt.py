"""Ctrl-C or SIGTERM in the middle of a stress through the emulated API leaves nothing behind:
no stress-ng, no pod process, no cgroup of the run (the removal registry stops the bridge, which
removes the local chaos and deletes every local pod)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from emulated_support import NEEDS_LOCAL_CLUSTER, stress_ng_pids

pytestmark = [*NEEDS_LOCAL_CLUSTER, pytest.mark.slow]

SESSION = """
import json, pathlib, sys, time
sys.path.insert(0, sys.argv[2])
from emulated_support import platform_objects
from pytest_hftk8s.chaos import stress_cpu
from pytest_hftk8s.cluster.emulated import EmulatedCluster
from pytest_hftk8s.cluster.kubernetes.chaos_driver import KubernetesChaos
from pytest_hftk8s.gate import GateConfig, ReadinessGate
cluster = EmulatedCluster(namespace="hft", state_dir=pathlib.Path(sys.argv[1]))
cluster.apply(platform_objects())
ReadinessGate(cluster, config=GateConfig(timeout_s=60)).wait()
local = cluster.environment.bridge.local_cluster("hft")
chaos = KubernetesChaos.for_cluster(cluster, run_id="intr", echo=lambda _m: None, allowed_contexts=())
with chaos.inject(stress_cpu(target="backend", load=50, duration="120s")):
    print(json.dumps({"run_id": local.run_id, "runtime_dir": str(local.runtime_dir)}), flush=True)
    time.sleep(120)
"""


def _left(run_id: str, runtime_dir: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    left = [line.strip() for line in out.splitlines() if runtime_dir in line]
    left += [f"stress-ng {pid}" for pid in stress_ng_pids(run_id)]
    left += [str(p) for root in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory")
             for p in Path(root).glob(f"**/hft-{run_id}*")]  # fmt: skip
    return left


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_session_leaves_no_pod_and_no_stress(tmp_path: Path, signum: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    session = subprocess.Popen(
        [sys.executable, "-c", SESSION, str(tmp_path / "state"), str(Path(__file__).parent)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = session.stdout.readline() if session.stdout else ""
        assert line, "the session printed nothing (it failed before the stress)"
        started = json.loads(line)
        assert stress_ng_pids(started["run_id"]), "no stress-ng in the backend's cgroups"
        session.send_signal(signum)
        session.wait(timeout=60)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait(timeout=10)
        if session.stdout:
            session.stdout.close()
    deadline = time.monotonic() + 10
    while (left := _left(started["run_id"], started["runtime_dir"])) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"left behind after {signum.name}: {left}"
    assert not Path(started["runtime_dir"]).exists()
