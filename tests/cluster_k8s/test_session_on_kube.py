"""A whole test session on an emulated kind context, through the installed plugin, in its own process.

The inner session runs ``pytest --hft-cluster=kind-kind --hft-images=load`` against the emulator
(:mod:`session_env`: the Kubernetes API with controllers, kubelet, DNS and the Chaos Mesh stand-in,
plus the preflight's answers), with ``docker`` and ``kind`` stand-ins on PATH, nginx's node port on
127.0.0.1:30080 (kind's ``extraPortMappings``) answering the warm-up, and a real Prometheus scraping
an exporter of kube-state-metrics and cAdvisor series. Its test kills a backend pod with ``hft_chaos``
and checks an SLO with ``hft_slo``. From the emulator's journal, the CLIs' log, nginx's and the inner
test's own timestamps, the outer test asserts the order a user would see on a real cluster: preflight,
images, apply, gates, chaos created and removed, SLO judged, then the sweep and the teardown. A
missing prerequisite (Chaos Mesh not installed) must stop the session within seconds with the table
and the Helm command, before any image is built or anything applied.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from session_env import NginxStandIn, SessionThread, cli_calls, fake_clis
from slo_servers import PROMETHEUS, Exporter, Prometheus, exporter_and_prometheus

from pytest_hftk8s.cluster.emulated.apiserver import write_kubeconfig

pytestmark = pytest.mark.slow

CONTEXT = "kind-kind"
NS = "hft"
CHAOS_PATH = f"/apis/chaos-mesh.org/v1alpha1/namespaces/{NS}/podchaos"

INNER = """
import json, pathlib, time

def backends(cluster):
    return {p.name for p in cluster.pods() if p.workload == "backend" and p.ready}

def test_pod_kill_then_slo(hft_platform, hft_chaos, hft_slo):
    marks = {"platform_at": time.time(), "access": hft_platform.access, "nginx": hft_platform.api_url}
    before = backends(hft_platform.cluster)
    with hft_chaos.pod_kill(target="backend") as exp:
        marks["injected"] = exp.run.name
    marks["chaos_done_at"] = time.time()
    deadline = time.monotonic() + 10
    while not (backends(hft_platform.cluster) - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    marks["backends"] = [sorted(before), sorted(backends(hft_platform.cluster))]
    (result,) = hft_slo.check(hft_slo.builtin.no_crashloop())
    marks["slo_at"] = time.time()
    marks["slo"] = [result.name, result.observed, result.passed, result.query]
    pathlib.Path("marks.json").write_text(json.dumps(marks))
"""


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Exporter, Prometheus]]:
    if not pathlib.Path(PROMETHEUS).exists():
        pytest.skip(f"needs Debian's prometheus binary at {PROMETHEUS} (apt-get install prometheus)")
    with exporter_and_prometheus() as pair:
        exporter, _prom = pair
        # kube-state-metrics and cAdvisor, as a kind cluster's Prometheus would see the platform.
        for pod, container in (("backend-7d9f", "backend"), ("engine-0", "engine")):
            labels = {"namespace": NS, "pod": pod}
            exporter.ctl("set", "kube_pod_status_ready", condition="true", **labels)
            exporter.ctl("inc", "container_cpu_usage_seconds_total", value=1.0, container=container, **labels)
        yield pair


@pytest.fixture
def cluster() -> Iterator[SessionThread]:
    thread = SessionThread()
    yield thread
    thread.stop()


def _run_inner(
    tmp_path: pathlib.Path, cluster: SessionThread, prom: Prometheus, *extra: str
) -> tuple[subprocess.CompletedProcess[str], float, pathlib.Path]:
    work = tmp_path / "inner"
    work.mkdir()
    (work / "test_inner.py").write_text(textwrap.dedent(INNER))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig.yaml", server=cluster.url, context=CONTEXT)
    log = tmp_path / "clis.log"
    bin_dir = fake_clis(tmp_path / "bin", log)
    env = {**os.environ, "KUBECONFIG": kubeconfig, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    args = ["-p", "no:cacheprovider", "-p", "no:asyncio", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if not any(ep.name == "hftk8s" for ep in importlib.metadata.entry_points(group="pytest11")):
        args += ["-p", "pytest_hftk8s.plugin"]
    args += [
        f"--hft-cluster={CONTEXT}",
        f"--hft-allow-context={CONTEXT}",
        "--hft-profile=kind",
        "--hft-images=load",
        f"--hft-prometheus-url={prom.url}",
        "--hft-gate-timeout=60",
        "--hft-deploy-timeout=60",
        *extra,
    ]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", *args, "test_inner.py"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return done, time.monotonic() - started, log


def _times(journal: list[tuple[float, str, str]], method: str, fragment: str = "") -> list[float]:
    return [t for t, m, path in journal if m == method and fragment in path]


def _order(text: str, *needles: str) -> list[int]:
    """The index of each needle in ``text``, each searched after the previous one (-1: not found)."""
    at, out = 0, []
    for needle in needles:
        at = text.find(needle, at)
        out.append(at)
        if at < 0:
            at = 0
    return out


def _bind_node_port(*, wait_s: float = 60.0) -> NginxStandIn:
    """nginx on kind's node port (extraPortMappings: hostPort 30080 on 127.0.0.1); other tests on this
    machine (the kind overlay's) hold it for a moment, so wait a bounded while before giving up."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return NginxStandIn("127.0.0.1", 30080)
        except OSError as e:
            if time.monotonic() >= deadline:
                pytest.skip(f"127.0.0.1:30080 stayed taken for {wait_s:g}s on this machine ({e})")
            time.sleep(0.5)


def test_a_session_on_kind_runs_preflight_images_deploy_gates_chaos_slo_then_sweeps(
    tmp_path: pathlib.Path, cluster: SessionThread, servers: tuple[Exporter, Prometheus], body_of: Any
) -> None:
    nginx = _bind_node_port()
    try:
        done, elapsed, log = _run_inner(tmp_path, cluster, servers[1])
    finally:
        nginx.stop()
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "1 passed" in out, out[-3000:]
    marks = json.loads((tmp_path / "inner" / "marks.json").read_text())
    journal = cluster.call(lambda: list(cluster.emulator.journal))

    # What the terminal says, in this order.
    said = _order(
        out,
        f"preflight of {CONTEXT} (namespace {NS})",
        "images: load hftk8s/backend:",
        "$ docker build",
        "$ kind load docker-image",
        "rendering manifests/overlays/kind",
        "deploying ",
        "gate warmup: passed",
        "load reaches nginx by nodeport",
        "chaos PodChaos ",
        "tearing the platform down",
    )
    assert -1 not in said, (said, out[-6000:])
    assert said == sorted(said), (said, out[-6000:])
    assert re.search(r"\n\d+ ok, \d+ warning\(s\), 0 failed\n", out), out[:3000]  # the preflight table

    # 1. preflight: the server version and one SelfSubjectAccessReview per verb, before anything else.
    reviews = _times(journal, "POST", "selfsubjectaccessreviews")
    version = _times(journal, "GET", "/version")
    assert version
    assert len(reviews) > 20
    cluster_wide = ("/apis/apps/v1/daemonsets", "/apis/storage.k8s.io/v1/storageclasses", "/api/v1/nodes")
    listed = [t for t, m, path in journal if m == "GET" and path in cluster_wide]
    preflight_end = max(reviews + [t for t in listed if t < min(_times(journal, "PATCH"))])
    assert len(listed) >= 3
    assert journal[0][1:] == ("GET", "/version")

    # 2. images: both built and loaded into kind's cluster "kind", after the preflight, before any apply.
    calls = cli_calls(log)
    argv = [" ".join(a) for _t, a in calls]
    assert [a.split()[:2] for a in argv] == [["docker", "build"], ["docker", "build"], ["kind", "load"]], argv
    refs = [a[a.index("-t") + 1] for _t, a in calls if a[:2] == ["docker", "build"]]
    assert [r.split(":")[0] for r in refs] == ["hftk8s/backend", "hftk8s/engine"]
    assert calls[2][1] == ["kind", "load", "docker-image", *refs, "--name", "kind"]
    applies = _times(journal, "PATCH")
    assert preflight_end < calls[0][0]
    assert calls[-1][0] < min(applies)

    # 3. apply: the workloads run the references just loaded.
    sent = [body_of(r) for r in cluster.emulator.requests() if str(r.method).upper().endswith("PATCH")]
    images = {
        c["image"]
        for b in sent
        if b and b.get("kind") in ("Deployment", "StatefulSet")
        for c in b["spec"]["template"]["spec"]["containers"]
        if c["image"].startswith("hftk8s/")
    }
    assert images == set(refs)
    last_apply = max(t for t in applies if t < marks["platform_at"])

    # 4. gates: DNS from inside a pod (exec), then the warm-up through the node port.
    dns = _times(journal, "GET", "/exec") + _times(journal, "POST", "/exec")
    assert dns
    assert last_apply < min(dns)
    warmups = [t for t, path in nginx.posts if path == "/v1/users"]
    assert warmups
    assert max(dns) <= max(warmups) < marks["platform_at"]
    assert marks["access"] == "nodeport"
    assert marks["nginx"] == "http://127.0.0.1:30080"

    # 5. chaos: the PodChaos created after the gates, then deleted (recovered) before the SLO.
    created = _times(journal, "POST", CHAOS_PATH)
    deleted = _times(journal, "DELETE", f"{CHAOS_PATH}/{marks['injected']}")
    assert len(created) == 1, journal[-40:]
    assert deleted, journal[-40:]
    assert marks["platform_at"] < created[0] < deleted[0] < marks["chaos_done_at"]
    before, after = marks["backends"]  # the stand-in killed the selected pod; its Deployment replaced it
    assert len(before) == 1
    assert len(after) == 1
    assert before != after

    # 6. SLO from PromQL, after the chaos: no CrashLoopBackOff in the namespace (the exporter's
    #    kube-state-metrics series say the pods are there, so "0" is data, not absence).
    name, observed, passed, query = marks["slo"]
    assert (name, observed, passed) == ("no_crashloopbackoff", 0.0, True)
    assert f'namespace="{NS}"' in query
    assert "kube_pod_container_status_waiting_reason" in query
    assert marks["chaos_done_at"] < marks["slo_at"]

    # 7. sweep at start and at teardown (chaos objects and claims by label), and the teardown's deletes.
    sweeps = _times(journal, "GET", CHAOS_PATH)
    assert any(t < min(applies) for t in sweeps)
    assert any(t > marks["slo_at"] for t in sweeps)
    teardown = [t for t in _times(journal, "DELETE") if t > marks["slo_at"]]
    assert teardown, "nothing was deleted after the test"
    assert any(
        p.endswith("/deployments/backend") for t, m, p in journal if m == "DELETE" and t > marks["slo_at"]
    )
    assert not _times(journal, "PATCH") or max(applies) < marks["platform_at"]  # nothing applied later
    assert elapsed < 180


def test_without_chaos_mesh_the_session_stops_within_seconds_with_the_table(
    tmp_path: pathlib.Path, cluster: SessionThread, servers: tuple[Exporter, Prometheus]
) -> None:
    cluster.call(cluster.emulator.drop_crds)
    done, elapsed, log = _run_inner(tmp_path, cluster, servers[1])
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert elapsed < 20, elapsed
    assert "1 error" in out, out[-3000:]
    assert "PreflightFailed" in out
    row = next(line for line in out.splitlines() if line.startswith("Chaos Mesh CRDs"))
    assert "FAIL" in row
    assert "chaos-mesh.org/v1alpha1 is not served" in row
    assert (
        f"helm upgrade --install chaos-mesh chaos-mesh/chaos-mesh --kube-context {CONTEXT} --namespace "
        "chaos-mesh --create-namespace --version 2.8.4 --set chaosDaemon.runtime=containerd --set "
        "chaosDaemon.socketPath=/run/containerd/containerd.sock"
    ) in out
    assert "1 failed" in out  # the table's summary line
    journal = cluster.call(lambda: list(cluster.emulator.journal))
    assert _times(journal, "POST", "selfsubjectaccessreviews")  # the preflight did run
    assert journal[-1][0] - journal[0][0] < 5  # the preflight's own requests, first to last
    assert not _times(journal, "PATCH"), "nothing may be applied when a prerequisite is missing"
    assert not cli_calls(log), "no image may be built when a prerequisite is missing"
