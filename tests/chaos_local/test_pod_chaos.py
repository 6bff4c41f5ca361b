"""PodChaos on the local cluster: pod-kill, container-kill and pod-failure against real processes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from chaos_workloads import NEEDS_ROOT, alive, deployment, http_server, wait_for

from pytest_hftk8s.chaos import container_kill, pod_failure, pod_kill
from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos
from pytest_hftk8s.errors import ChaosError

pytestmark = [NEEDS_ROOT, pytest.mark.slow]

SIDECAR = {"name": "side", "image": "python:3.11", "command": ["sh", "-c", "while true; do sleep 0.2; done"]}


def _ready(cluster: LocalCluster) -> None:
    wait_for(lambda: all(w.is_available for w in cluster.workloads()), timeout=15, what="pods ready")


def _restarts(cluster: LocalCluster, pod: str) -> dict[str, int]:
    status = next(p for p in cluster.pods() if p.name == pod)
    return {c.name: c.restart_count for c in status.containers}


def test_pod_kill_restarts_the_pod_and_it_becomes_ready_again(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    cluster.apply([http_server("web", replicas=2, containers=[SIDECAR])])
    _ready(cluster)
    chaos = chaos_on(cluster, seed=1)
    before = {p.name: cluster.container_pids(p.name) for p in cluster.pods()}
    with chaos.inject(pod_kill(target="web")) as run:  # mode "one": exactly one of the two pods
        assert run.injected_at is not None
        killed = {r["pod"] for r in run.records}
        assert len(killed) == 1
        (victim,) = killed
        assert {r["container"] for r in run.records} == {"web", "side"}
        assert not any(alive(pid) for pid in before[victim].values())
    wait_for(lambda: _restarts(cluster, victim) == {"web": 1, "side": 1}, timeout=10, what="both restarted")
    wait_for(
        lambda: next(p for p in cluster.pods() if p.name == victim).ready, timeout=10, what="ready again"
    )
    survivor = next(name for name in before if name != victim)
    assert _restarts(cluster, survivor) == {"web": 0, "side": 0}
    assert cluster.container_pids(survivor) == before[survivor]
    status = next(p for p in cluster.pods() if p.name == victim)
    assert {c.last_terminated_reason for c in status.containers} == {"Error"}  # exit 137, not an OOM kill


def test_container_kill_kills_only_the_named_container(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    cluster.apply([http_server("web", containers=[SIDECAR])])
    _ready(cluster)
    pod = cluster.pods()[0].name
    before = cluster.container_pids(pod)
    with chaos_on(cluster).inject(container_kill(target="web", containers=["side"])) as run:
        assert [r["id"] for r in run.records] == [f"{pod}/side"]
    wait_for(lambda: _restarts(cluster, pod)["side"] == 1, timeout=10, what="side restarted")
    assert _restarts(cluster, pod)["web"] == 0
    assert cluster.container_pids(pod)["web"] == before["web"]
    assert alive(before["web"])
    assert not alive(before["side"])


def test_pod_failure_freezes_the_pod_for_its_duration(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    cluster.apply([http_server("web")])
    _ready(cluster)
    pod = cluster.pods()[0].name
    pid = cluster.container_pids(pod)["web"]
    with chaos_on(cluster).inject(pod_failure(target="web", duration="2s")) as run:
        assert not cluster.pods()[0].ready  # unready at once, not a probe period later
        wait_for(lambda: _proc_state(pid) == "T", timeout=2, what="stopped")  # a pause image does nothing
        time.sleep(0.6)
        assert not cluster.pods()[0].ready
        wait_for(lambda: _proc_state(pid) != "T", timeout=5, what="thawed at the duration")
        assert run.removed is False
    wait_for(lambda: cluster.pods()[0].ready, timeout=10, what="ready after the failure")
    assert cluster.container_pids(pod)["web"] == pid  # the same process, resumed
    assert run.records[0]["phase"] == "Recovered"


def test_selector_that_matches_nothing_is_a_chaos_error(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster()
    cluster.apply([deployment("idle", ["sleep", "30"])])
    with (
        pytest.raises(ChaosError, match="selects nothing"),
        chaos_on(cluster).inject(pod_kill(target="nope")),
    ):
        pytest.fail("nothing was selected")


def _proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]
