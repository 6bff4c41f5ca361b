"""A real ``pytest --hft-cluster=local`` run interrupted in the middle of an experiment leaves nothing:
SIGINT removes the chaos and tears the platform down; SIGKILL leaves it running until the next run's
sweep removes it."""

from __future__ import annotations

import json
import pathlib
import signal

import pytest
from resilience_support import NEEDS_LOCAL_CLUSTER, alive, leftovers, start_inner, stress_pids, wait_for

pytestmark = [*NEEDS_LOCAL_CLUSTER, pytest.mark.slow]

#: The inner test: CPU stress on the backend and a network delay in front of the engine, then it
#: publishes what it started and waits to be interrupted.
INNER = """
import json, os, pathlib, time

def test_long_experiment(hft_chaos, hft_cluster):
    with hft_chaos.stress_cpu(target="backend", load=50, duration="120s") as cpu, \\
         hft_chaos.network_delay(target="engine", latency="5ms", duration="120s"):
        pids = [int(e.split()[2]) for r in cpu.run.records for e in r.get("events", [])
                if e.startswith("stress-ng pid")]
        mark = {"run_id": hft_cluster.run_id, "stress": pids, "pid": os.getpid()}
        pathlib.Path(os.environ["HFT_TEST_MARK"]).write_text(json.dumps(mark))
        time.sleep(120)
"""


def _start(tmp_path: pathlib.Path):
    (tmp_path / "test_inner_chaos.py").write_text(INNER)
    mark = tmp_path / "mark.json"
    proc = start_inner(
        tmp_path, "--hft-cluster=local", "test_inner_chaos.py", env={"HFT_TEST_MARK": str(mark)}
    )
    try:
        wait_for(mark.exists, timeout=120, what="the inner run to deploy and inject its chaos")
    except BaseException:
        proc.kill()
        out = proc.communicate(timeout=30)[0]
        raise AssertionError(f"inner run output:\n{out[-4000:]}") from None
    return proc, json.loads(mark.read_text())


def test_sigint_mid_experiment_leaves_nothing_behind(tmp_path: pathlib.Path) -> None:
    proc, started = _start(tmp_path)
    try:
        assert started["stress"], started
        assert all(alive(p) for p in started["stress"]), started
        assert stress_pids(started["run_id"]), "the stress is not running inside the run's cgroups"
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=90)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 2, (
        f"expected pytest's 'interrupted' exit code 2, got {proc.returncode}:\n{out[-3000:]}"
    )
    assert not any(alive(p) for p in started["stress"])
    assert stress_pids(started["run_id"]) == []
    assert leftovers(started["run_id"]) == [], out[-3000:]


def test_sigkill_mid_experiment_is_swept_by_the_next_run(tmp_path: pathlib.Path) -> None:
    from resilience_support import STATE_DIR

    from pytest_hftk8s.cluster.local import LocalCluster

    proc, started = _start(tmp_path)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    # Killed outright: no finally, no SIGINT handler, no atexit ran; the stress and the pods remain.
    assert any(alive(p) for p in started["stress"]), "nothing was left to sweep: the test proves nothing"
    assert leftovers(started["run_id"])
    nxt = LocalCluster(namespace="hft", state_dir=STATE_DIR)  # the next run: it sweeps before deploying
    try:
        assert any(started["run_id"] in line for line in nxt.swept), nxt.swept
        wait_for(lambda: not any(alive(p) for p in started["stress"]), timeout=10, what="stress-ng gone")
        wait_for(
            lambda: leftovers(started["run_id"]) == [], timeout=15, what="no leftovers of the killed run"
        )
    finally:
        nxt.delete_all()
