"""Chaos never outlives its test: exceptions, SIGINT, SIGTERM, and a run killed outright (swept by the
next one); nor does the local cluster itself on SIGTERM (a cancelled CI job, ``timeout``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from chaos_workloads import (
    NEEDS_ROOT,
    alive,
    hft_cgroups,
    http_server,
    service,
    stress_ng_pids,
    stress_pids_of,
    wait_for,
)

from pytest_hftk8s.chaos import network_delay, stress_cpu, stress_memory
from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos

pytestmark = [NEEDS_ROOT, pytest.mark.slow]

#: A session that starts a stress and then waits to be killed (SIGKILL) or interrupted (SIGINT).
SESSION = """
import json, pathlib, sys, time
sys.path.insert(0, sys.argv[3])
from chaos_workloads import http_server
from pytest_hftk8s.chaos import stress_cpu
from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos
from pytest_hftk8s.cluster.local import LocalCluster
with LocalCluster(namespace="t", state_dir=pathlib.Path(sys.argv[1])) as cluster:
    cluster.apply([http_server("web", limits={"cpu": "200m", "memory": "128Mi"})])
    deadline = time.monotonic() + 15
    while not all(w.is_available for w in cluster.workloads()) and time.monotonic() < deadline:
        time.sleep(0.05)
    chaos = LocalChaos(cluster, echo=lambda _t: None)
    try:
        with chaos.inject(stress_cpu(target="web", load=100, workers=2, duration="60s")) as run:
            pid = int(run.records[0]["events"][0].split()[2])
            print(json.dumps({"run_id": cluster.run_id, "stress": pid}), flush=True)
            time.sleep(float(sys.argv[2]))
    except KeyboardInterrupt:
        print(json.dumps({"after_sigint_stress_alive": __import__("os").path.exists(f"/proc/{pid}/cmdline")
                          and open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z",
                          "removed": run.removed}), flush=True)
"""


#: A cluster with one pod and no chaos, waiting to be terminated (SIGTERM: Python's default skips atexit).
PLAIN_SESSION = """
import json, pathlib, sys, time
sys.path.insert(0, sys.argv[3])
from chaos_workloads import http_server
from pytest_hftk8s.cluster.local import LocalCluster
cluster = LocalCluster(namespace="t", state_dir=pathlib.Path(sys.argv[1]))
cluster.apply([http_server("web")])
deadline = time.monotonic() + 15
while not all(w.is_available for w in cluster.workloads()) and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({"run_id": cluster.run_id, "runtime_dir": str(cluster.runtime_dir)}), flush=True)
time.sleep(float(sys.argv[2]))
"""


def _session(state_dir: Path, hold: float, *, script: str = SESSION) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    here = str(Path(__file__).parent)
    return subprocess.Popen(
        [sys.executable, "-c", script, str(state_dir), str(hold), here],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_exception_inside_the_with_removes_every_chaos(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    cluster.apply([http_server("web", limits={"cpu": "300m", "memory": "256Mi"}), service("web", port=8080)])
    wait_for(lambda: all(w.is_available for w in cluster.workloads()), timeout=15, what="web ready")
    web_ip = cluster.pods()[0].ip
    chaos = chaos_on(cluster)
    runs = []
    with (  # noqa: PT012 - raising inside the experiments is the point
        pytest.raises(RuntimeError, match="boom"),
        chaos.inject(stress_cpu(target="web", load=50, duration="60s")) as cpu,
        chaos.inject(stress_memory(target="web", size="32MiB", duration="60s")) as mem,
        chaos.inject(network_delay(target="web", latency="50ms")) as net,
    ):
        runs += [cpu, mem, net]
        assert cluster.service_address("web", "http").host != web_ip
        raise RuntimeError("boom")
    pids = [pid for run in runs for pid in stress_pids_of(run.records)]
    assert len(pids) == 2
    assert not any(alive(pid) for pid in pids)
    assert stress_ng_pids(cluster.run_id) == []
    assert all(run.removed and run.ended_at for run in runs)
    assert cluster.service_address("web", "http").host == web_ip
    assert cluster.pods()[0].containers[0].restart_count == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_or_sigterm_mid_stress_removes_it(tmp_path: Path, signum: signal.Signals) -> None:
    session = _session(tmp_path / "state", hold=30)
    try:
        line = session.stdout.readline() if session.stdout else ""
        assert line, "the session printed nothing"
        started = json.loads(line)
        assert alive(started["stress"])
        session.send_signal(signum)
        after = json.loads(session.stdout.readline() if session.stdout else "{}")
        assert session.wait(timeout=20) == 0
    finally:
        session.kill()
        session.wait(timeout=10)
        if session.stdout:
            session.stdout.close()
    assert after == {"after_sigint_stress_alive": False, "removed": True}
    assert not alive(started["stress"])
    assert hft_cgroups(started["run_id"]) == []
    assert not list((tmp_path / "state").glob("local-*.json"))


def test_sigterm_tears_a_local_cluster_down_without_any_chaos(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    session = _session(state_dir, hold=30, script=PLAIN_SESSION)
    try:
        line = session.stdout.readline() if session.stdout else ""
        assert line, "the session printed nothing"
        started = json.loads(line)
        assert hft_cgroups(started["run_id"])
        session.send_signal(signal.SIGTERM)
        session.wait(timeout=20)
    finally:
        session.kill()
        session.wait(timeout=10)
        if session.stdout:
            session.stdout.close()
    # The teardown ran (not left for a sweep): no cgroup, no runtime directory, no state file.
    assert hft_cgroups(started["run_id"]) == []
    assert not Path(started["runtime_dir"]).exists()
    assert not list(state_dir.glob("local-*.json"))


def test_session_killed_mid_stress_is_swept_by_the_next_cluster(
    tmp_path: Path, make_cluster: Callable[..., LocalCluster]
) -> None:
    state_dir = tmp_path / "state"
    session = _session(state_dir, hold=60)
    try:
        line = session.stdout.readline() if session.stdout else ""
        session.send_signal(signal.SIGKILL)
        session.wait(timeout=10)
    finally:
        session.kill()
        session.wait(timeout=10)
        if session.stdout:
            session.stdout.close()
    assert line, "the session printed nothing"
    started = json.loads(line)
    # Killed outright: no finally, no atexit, no SIGINT handler ran; the stress still burns.
    assert alive(started["stress"])
    assert stress_ng_pids(started["run_id"])
    cluster = make_cluster()  # same state_dir: sweeps before anything else
    assert any(started["run_id"] in line for line in cluster.swept)
    assert LocalChaos(cluster).sweep() == cluster.swept
    wait_for(lambda: not alive(started["stress"]), timeout=5, what="stress-ng gone")
    assert stress_ng_pids(started["run_id"]) == []
    assert hft_cgroups(started["run_id"]) == []
