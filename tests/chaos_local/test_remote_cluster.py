"""The local cluster seen from another process (an xdist worker that did not deploy it): the cluster
contract and chaos through the owner's control socket, and chaos removed when that process dies."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest
from chaos_workloads import NEEDS_ROOT, http_server, stress_ng_pids, wait_for

from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local.remote import RemoteCluster
from pytest_hftk8s.errors import ClusterError

pytestmark = [NEEDS_ROOT, pytest.mark.slow]

#: Runs in a separate process: attach, read, inject a CPU stress, report, then remove it or die.
WORKER = """
import json, os, signal, sys, time
from pytest_hftk8s.chaos import stress_cpu
from pytest_hftk8s.cluster.select import attach_cluster

shared, ending = json.loads(sys.argv[1]), sys.argv[2]
cluster = attach_cluster("local", namespace="t", shared=shared)
pods = [p.name for p in cluster.pods()]
address = cluster.service_address("web", 80)
driver = cluster.chaos_driver(run_id="w1", allowed_contexts=(), echo=lambda _m: None)
with driver.inject(stress_cpu(target="web", load=60, duration="30s")) as run:
    print(json.dumps({"pods": pods, "address": [address.host, address.port], "records": run.records}), flush=True)
    time.sleep(float(sys.argv[3]))
    if ending == "die":
        os.kill(os.getpid(), signal.SIGKILL)  # no finally, no SIGINT handler, no atexit
print(json.dumps({"removed": run.removed, "phase": run.records[0]["phase"]}), flush=True)
"""


def _deploy(make_cluster: Callable[..., LocalCluster]) -> LocalCluster:
    cluster = make_cluster()
    if not cluster.limits_enforced:
        pytest.skip(f"cgroup limits unavailable here: {cluster.warnings}")
    web = http_server("web", limits={"cpu": "300m", "memory": "128Mi"})
    cluster.apply([web, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "t"},
                         "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}])  # fmt: skip
    wait_for(lambda: all(w.is_available for w in cluster.workloads()), timeout=15, what="pods ready")
    return cluster


def _worker(cluster: LocalCluster, ending: str, hold_s: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(dict(cluster.share())), ending, str(hold_s)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_another_process_reads_the_cluster_and_injects_through_the_owner(
    make_cluster: Callable[..., LocalCluster],
) -> None:
    cluster = _deploy(make_cluster)
    proc = _worker(cluster, "remove", 2.0)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline() or "{}")
    assert first, proc.stderr.read() if proc.stderr else ""
    assert first["pods"] == [p.name for p in cluster.pods()]
    address = cluster.service_address("web", 80)
    assert first["address"] == [address.host, address.port]
    (record,) = first["records"]
    assert record["phase"] == "Injected"
    # The stress runs in the owner's cluster, inside the pod's cgroups, while the other process holds it.
    assert stress_ng_pids(cluster.run_id), "no stress-ng in the run's cgroups while the worker holds it"
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out.splitlines()[-1]) == {"removed": True, "phase": "Recovered"}
    assert stress_ng_pids(cluster.run_id) == []


def test_chaos_of_a_process_that_died_is_removed_by_the_owner(
    make_cluster: Callable[..., LocalCluster],
) -> None:
    cluster = _deploy(make_cluster)
    proc = _worker(cluster, "die", 0.5)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # Killed outright with a 30 s stress injected: the owner's reaper removes it within seconds.
    wait_for(
        lambda: stress_ng_pids(cluster.run_id) == [], timeout=10, what="the dead worker's stress removed"
    )


def test_a_wrong_key_or_a_deploy_is_refused(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = _deploy(make_cluster)
    shared = dict(cluster.share())
    with pytest.raises(ClusterError, match="expected the local cluster's owner"):
        RemoteCluster.connect({**shared, "authkey": "00" * 16})
    remote = RemoteCluster.connect(shared)
    with pytest.raises(ClusterError, match="only the owner deploys"):
        remote.apply([])
    with pytest.raises(ClusterError, match="no service 'nope'"):
        remote.service_address("nope", 80)
