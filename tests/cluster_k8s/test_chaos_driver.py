"""The Chaos Mesh driver against the kmock API emulator: create, wait, always remove, sweep, safety.

The emulated Chaos Mesh selects the emulator's own pods by the experiment's selector (the
``running_pods`` fixture runs the local overlay's workloads), so a selector that matches nothing
fails as it does on a cluster, and the container records name real pods.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import kmock
import pytest
import yaml

from pytest_hftk8s import chaos
from pytest_hftk8s.chaos import registry
from pytest_hftk8s.chaos.driver import ChaosDriver
from pytest_hftk8s.cluster.kubernetes import KubeApi, KubernetesCluster
from pytest_hftk8s.cluster.kubernetes.chaos_driver import KubernetesChaos
from pytest_hftk8s.errors import ChaosError, ChaosRefused

STRESS_PATH = "/apis/chaos-mesh.org/v1alpha1/namespaces/hft/stresschaos"


@pytest.fixture
def api(kubeconfig: str) -> Iterator[KubeApi]:
    client = KubeApi(context="emulated", kubeconfig=kubeconfig)
    yield client
    client.close()


@pytest.fixture
def echoed() -> list[str]:
    return []


@pytest.fixture
def driver(api: KubeApi, echoed: list[str]) -> KubernetesChaos:
    return KubernetesChaos(
        api,
        namespace="hft",
        run_id="run-1",
        allowed_contexts=["emulated"],
        inject_timeout=3.0,
        recover_timeout=3.0,
        poll_interval=0.05,
        echo=echoed.append,
    )


@pytest.fixture(autouse=True)
def _registry_is_left_empty() -> Iterator[None]:
    yield
    assert registry.live() == [], "a test left a chaos experiment registered"


def _calls(emulator: Any, path_suffix: str = "") -> list[tuple[str, str]]:
    return [(str(r.method), r.url.path) for r in emulator.requests() if r.url.path.endswith(path_suffix)]


def test_is_a_chaos_driver(driver: KubernetesChaos) -> None:
    assert isinstance(driver, ChaosDriver)


def _id_of(pods: list[dict[str, Any]], workload: str) -> str:
    (pod,) = [p for p in pods if p["metadata"]["labels"].get("app") == workload]
    return f"hft/{pod['metadata']['name']}"


def test_inject_creates_waits_for_injection_and_removes(
    driver: KubernetesChaos, emulator: Any, body_of: Any, running_pods: list[dict[str, Any]]
) -> None:
    experiment = chaos.stress_cpu(target="backend", load=80, workers=1, duration="30s")
    with driver.inject(experiment, name="hft-cpu") as run:
        assert run.injected_at is not None
        assert run.records[0]["phase"] == "Injected"
        assert registry.live() == ["hft/stresschaos/hft-cpu"]
        stored = emulator.objects["chaos-mesh.org/v1alpha1/stresschaos", "hft", "hft-cpu"]
        assert stored >= {"metadata": {"labels": {"app.kubernetes.io/managed-by": "pytest-hftk8s"}}}
        requests_inside = len(emulator.requests())
    (create,) = [r for r in emulator.requests() if r.method == "POST"]
    assert create.url.path == STRESS_PATH
    expected = experiment.to_object(namespace="hft", run_id="run-1", name="hft-cpu")
    expected["metadata"]["labels"]["hftk8s.io/namespace"] = "hft"  # every object says its session
    assert body_of(create) == expected
    assert body_of(create)["metadata"]["labels"]["hftk8s.io/run-id"] == "run-1"
    after = [(str(r.method), r.url.path) for r in emulator.requests()[requests_inside:]]
    assert after[0] == ("method.DELETE", f"{STRESS_PATH}/hft-cpu")
    assert ("method.GET", f"{STRESS_PATH}/hft-cpu") in after[1:]  # waited for recovery (it has a duration)
    assert emulator.objects["chaos-mesh.org/v1alpha1/stresschaos", "hft", "hft-cpu"].deleted
    assert run.ended_at is not None
    assert run.window.start == run.injected_at
    record = run.record("stress-cpu backend")
    assert record.action == "cpu"
    assert record.injected is True
    assert record.containers == [_id_of(running_pods, "backend") + "/backend"]  # pod/container of a stress
    assert record.window is not None
    assert record.window.start == run.injected_at
    assert record.window.end <= run.ended_at
    assert record.requested["cpu_cores"] == pytest.approx(experiment.workers * experiment.load / 100)
    assert record.intensity_cross_check == []  # Chaos Mesh measures nothing: Prometheus judges


def test_one_shot_pod_kill_does_not_wait_for_recovery(
    emulator: Any, emulator_thread: Any, kubeconfig: str, running_pods: list[dict[str, Any]]
) -> None:
    cluster = KubernetesCluster(context="emulated", namespace="hft", kubeconfig=kubeconfig)
    driver = KubernetesChaos.for_cluster(
        cluster, run_id="r", allowed_contexts=["emulated"], poll_interval=0.05
    )
    with driver.inject(chaos.pod_kill(target="engine"), name="hft-kill") as run:
        count = len(emulator.requests())
    assert run.injected_at is not None
    cluster.close()
    after = [(str(r.method), r.url.path) for r in emulator.requests()[count:]]
    assert after == [("method.DELETE", "/apis/chaos-mesh.org/v1alpha1/namespaces/hft/podchaos/hft-kill")]
    assert run.record("pod-kill engine").action == "pod-kill"
    killed = _id_of(running_pods, "engine")
    assert run.record("pod-kill engine").containers == [killed]  # a pod-level record
    assert emulator.objects["v1/pods", "hft", killed.split("/")[1]].deleted
    replacement = emulator_thread.wait_for(
        lambda: [
            k[2] for k, o in emulator.objects.items()
            if str(k[0].plural) == "pods" and not o.deleted and o["metadata"]["labels"].get("app") == "engine"
        ],
        what="the killed engine pod's replacement",
    )  # fmt: skip
    assert replacement != [killed.split("/")[1]]


def test_injection_timeout_reports_container_record_failures(
    driver: KubernetesChaos, emulator: Any, running_pods: list[dict[str, Any]]
) -> None:
    emulator.chaos_behaviour = "fail"
    driver.inject_timeout = 0.5
    with (
        pytest.raises(ChaosError) as info,
        driver.inject(chaos.stress_memory(target="backend"), name="hft-mem"),
    ):
        pytest.fail("the block must not run when injection failed")
    message = str(info.value)
    assert "not injected within 0.5s" in message
    assert "AllInjected=False" in message
    assert "stress-ng: cannot attach to the container's cgroup" in message
    assert _id_of(running_pods, "backend") + "/backend: Apply failed" in message  # which record failed
    assert ("method.DELETE", f"{STRESS_PATH}/hft-mem") in _calls(emulator)  # removed all the same


def test_injection_timeout_without_events_points_at_the_selector(
    driver: KubernetesChaos, emulator: Any
) -> None:
    emulator.chaos_behaviour = "silent"
    driver.inject_timeout = 0.3
    with (
        pytest.raises(ChaosError, match=r"No failure events.*'app': 'engine'"),
        driver.inject(chaos.pod_failure(target="engine"), name="hft-fail"),
    ):
        pytest.fail("the block must not run when injection timed out")
    assert ("method.DELETE", "/apis/chaos-mesh.org/v1alpha1/namespaces/hft/podchaos/hft-fail") in _calls(
        emulator
    )


def test_missing_chaos_mesh_is_a_chaos_error(driver: KubernetesChaos, emulator: Any) -> None:
    emulator[f"post {STRESS_PATH}"] << kmock.KubernetesNotFoundError(
        message="the server could not find the resource"
    )
    with (
        pytest.raises(
            ChaosError, match=r"could not be created.*install its CRDs \(e.g. Chaos Mesh\)"
        ) as info,
        driver.inject(chaos.stress_cpu(target="backend"), name="hft-nocrd"),
    ):
        pytest.fail("the block must not run when creation failed")
    assert info.value.__cause__ is not None


def test_an_exception_in_the_block_still_removes(
    driver: KubernetesChaos, emulator: Any, running_pods: list[dict[str, Any]]
) -> None:
    with (
        pytest.raises(RuntimeError, match="test body failed"),
        driver.inject(chaos.network_delay(target="postgres", latency="50ms"), name="hft-delay"),
    ):
        raise RuntimeError("test body failed")
    assert ("method.DELETE", "/apis/chaos-mesh.org/v1alpha1/namespaces/hft/networkchaos/hft-delay") in _calls(
        emulator
    )
    assert emulator.objects["chaos-mesh.org/v1alpha1/networkchaos", "hft", "hft-delay"].deleted


def test_registry_removal_is_idempotent(
    driver: KubernetesChaos, emulator: Any, running_pods: list[dict[str, Any]]
) -> None:
    with driver.inject(chaos.stress_cpu(target="backend"), name="hft-twice") as run:
        assert registry.remove_all() == ["hft/stresschaos/hft-twice"]  # what atexit / SIGINT run
        assert run.removed
        assert registry.live() == []
    deletes = [c for c in _calls(emulator) if c[0] == "method.DELETE"]
    assert deletes == [("method.DELETE", f"{STRESS_PATH}/hft-twice")]  # the finally did not delete again


def test_schedule_is_created_without_an_injection_wait(driver: KubernetesChaos, emulator: Any) -> None:
    with driver.inject(
        chaos.schedule(cron="@every 1m", experiment=chaos.pod_kill(target="backend")), name="hft-s"
    ):
        inside = _calls(emulator)
    assert inside == [("method.POST", "/apis/chaos-mesh.org/v1alpha1/namespaces/hft/schedules")]
    assert ("method.DELETE", "/apis/chaos-mesh.org/v1alpha1/namespaces/hft/schedules/hft-s") in _calls(
        emulator
    )


def test_sweep_deletes_only_the_plugins_objects(
    driver: KubernetesChaos, emulator: Any, emulator_thread: Any
) -> None:
    def seed() -> None:
        ours = {"app.kubernetes.io/managed-by": "pytest-hftk8s", "hftk8s.io/run-id": "killed-run"}
        emulator.objects["chaos-mesh.org/v1alpha1/stresschaos", "hft", "left-1"] = {
            "metadata": {"name": "left-1", "namespace": "hft", "labels": ours}
        }
        emulator.objects["chaos-mesh.org/v1alpha1/podchaos", "hft", "left-2"] = {
            "metadata": {"name": "left-2", "namespace": "hft", "labels": ours}
        }
        emulator.objects["chaos-mesh.org/v1alpha1/stresschaos", "hft", "someone-elses"] = {
            "metadata": {"name": "someone-elses", "namespace": "hft", "labels": {"team": "sre"}}
        }

    emulator_thread.call(seed)
    (
        emulator["get /apis/chaos-mesh.org/v1alpha1/namespaces/hft/networkchaos"]
        << kmock.KubernetesNotFoundError()
    )
    assert sorted(driver.sweep()) == ["PodChaos/left-2", "StressChaos/left-1"]
    lists = [r for r in emulator.requests() if r.method == "GET" and "labelSelector" in r.url.query]
    assert {r.url.query["labelSelector"] for r in lists} == {"app.kubernetes.io/managed-by=pytest-hftk8s"}
    assert len(lists) == 4  # every chaos kind, the missing CRD skipped
    assert not emulator.objects["chaos-mesh.org/v1alpha1/stresschaos", "hft", "someone-elses"].deleted
    assert emulator.objects["chaos-mesh.org/v1alpha1/stresschaos", "hft", "left-1"].deleted
    assert driver.sweep() == []


def test_refuses_a_context_that_is_not_allowed(api: KubeApi, emulator: Any) -> None:
    cautious = KubernetesChaos(api, namespace="hft", run_id="r", allowed_contexts=["kind-hft"])
    with (
        pytest.raises(ChaosRefused, match=r"context 'emulated'.*--hft-allow-context=emulated"),
        cautious.inject(chaos.pod_kill(target="postgres")),
    ):
        pytest.fail("refused chaos must not run the block")
    assert emulator.requests() == []


def test_dry_run_prints_and_injects_nothing(api: KubeApi, emulator: Any, echoed: list[str]) -> None:
    dry = KubernetesChaos(
        api, namespace="hft", run_id="r", dry_run=True, echo=echoed.append
    )  # no allow-list needed
    experiment = chaos.stress_memory(target="backend", size="512MB")
    with dry.inject(experiment, name="hft-dry") as run:
        assert run.dry_run
    (printed,) = echoed
    assert yaml.safe_load(printed.removeprefix("---\n")) == experiment.to_object(
        namespace="hft", run_id="r", name="hft-dry"
    )
    assert emulator.requests() == []
    assert run.ended_at is not None


DRIVER_SETUP = """
import os, pathlib, sys, time
from pytest_hftk8s import chaos
from pytest_hftk8s.cluster.kubernetes.chaos_driver import KubernetesChaos
from pytest_hftk8s.chaos.driver import ChaosDriver
from pytest_hftk8s.cluster.kubernetes import KubeApi, KubernetesCluster

def make_driver():
    api = KubeApi(context="emulated", kubeconfig=os.environ["HFT_TEST_KUBECONFIG"])
    return KubernetesChaos(
        api, namespace="hft", run_id="child", allowed_contexts=["emulated"], poll_interval=0.05, inject_timeout=10
    )
"""


def _eventually_gone(emulator: Any, key: tuple[str, str, str]) -> bool:
    """The emulated controller releases its finalizer shortly after the DELETE (bounded wait)."""
    deadline = time.monotonic() + 3
    while not emulator.objects[key].deleted and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(emulator.objects[key].deleted)


def _child_env(kubeconfig: str, marker: pathlib.Path) -> dict[str, str]:
    return {**os.environ, "HFT_TEST_KUBECONFIG": kubeconfig, "HFT_TEST_MARKER": str(marker)}


def test_atexit_guard_removes_chaos_left_open(
    kubeconfig: str, emulator: Any, tmp_path: pathlib.Path, running_pods: list[dict[str, Any]]
) -> None:
    script = tmp_path / "leave_open.py"
    script.write_text(
        "import atexit\n"
        "from pytest_hftk8s.chaos import registry\n"
        "atexit.register(lambda: print('live after atexit guard:', registry.live(), flush=True))\n"
        + DRIVER_SETUP
        + textwrap.dedent(
            """
            cm = make_driver().inject(chaos.stress_cpu(target="backend"), name="hft-atexit")
            cm.__enter__()
            print("injected", flush=True)
            # no __exit__: only the atexit guard can remove it now
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        env=_child_env(kubeconfig, tmp_path / "m"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "injected" in done.stdout
    assert "live after atexit guard: []" in done.stdout
    assert ("method.DELETE", f"{STRESS_PATH}/hft-atexit") in _calls(emulator)
    assert _eventually_gone(emulator, ("chaos-mesh.org/v1alpha1/stresschaos", "hft", "hft-atexit"))


def test_sigint_during_an_experiment_in_a_pytest_subprocess(
    kubeconfig: str, emulator: Any, tmp_path: pathlib.Path, running_pods: list[dict[str, Any]]
) -> None:
    marker = tmp_path / "injected.marker"
    test_file = tmp_path / "test_victim.py"
    test_file.write_text(
        DRIVER_SETUP
        + textwrap.dedent(
            """
            def test_long_experiment():
                with make_driver().inject(chaos.stress_cpu(target="backend", load=80), name="hft-sigint"):
                    pathlib.Path(os.environ["HFT_TEST_MARKER"]).write_text("injected")
                    time.sleep(60)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=tmp_path,
        env=_child_env(kubeconfig, marker),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the child never got its experiment injected"
            time.sleep(0.05)
        assert emulator.objects["chaos-mesh.org/v1alpha1/stresschaos", "hft", "hft-sigint"] >= {"spec": {}}
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 2, output  # pytest: interrupted
    assert "KeyboardInterrupt" in output
    deletes = [c for c in _calls(emulator) if c[0] == "method.DELETE"]
    assert deletes == [("method.DELETE", f"{STRESS_PATH}/hft-sigint")]
    assert _eventually_gone(emulator, ("chaos-mesh.org/v1alpha1/stresschaos", "hft", "hft-sigint"))


def test_a_selector_that_matches_no_pod_fails_within_seconds(
    driver: KubernetesChaos, emulator: Any, running_pods: list[dict[str, Any]]
) -> None:
    driver.inject_timeout = 30.0  # it must not take that long
    started = time.monotonic()
    with (
        pytest.raises(ChaosError) as info,
        driver.inject(chaos.stress_cpu(target="no-such-workload"), name="hft-nothing"),
    ):
        pytest.fail("the block must not run when nothing was selected")
    assert time.monotonic() - started < 3.0
    message = str(info.value)
    assert "StressChaos hft-nothing selected no pod" in message
    assert "Selected=False, AllInjected=True" in message  # chaos-mesh#3374: vacuously "all injected"
    assert "event: 'Failed to select targets: no pod is selected'" in message
    assert "kubectl -n hft get pods -l app=no-such-workload" in message
    assert ("method.DELETE", f"{STRESS_PATH}/hft-nothing") in _calls(emulator)  # removed all the same
    stored = emulator.objects["chaos-mesh.org/v1alpha1/stresschaos", "hft", "hft-nothing"]
    assert stored.last["status"]["experiment"] == {
        "desiredPhase": "Run"
    }  # no records, as Chaos Mesh leaves it


def test_without_the_event_the_3374_status_fails_after_the_select_grace(
    driver: KubernetesChaos, emulator: Any
) -> None:
    emulator["get /api/v1/namespaces/hft/events"] << kmock.KubernetesError(status=403, reason="Forbidden")
    driver.select_grace = 0.5
    started = time.monotonic()
    with (
        pytest.raises(ChaosError, match=r"selected no pod after"),
        driver.inject(chaos.pod_kill(target="engine")),
    ):
        pytest.fail("the block must not run when nothing was selected")
    assert 0.5 <= time.monotonic() - started < 3.0


def _pods_labelled(emulator: Any, n: int) -> None:
    for i in range(n):
        emulator.objects["v1/pods", "hft", f"web-{i}"] = {
            "metadata": {"name": f"web-{i}", "namespace": "hft", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx"}, {"name": "exporter"}]},
            "status": {"phase": "Running"},
        }
    emulator.objects["v1/pods", "elsewhere", "web-x"] = {  # another namespace: never selected
        "metadata": {"name": "web-x", "namespace": "elsewhere", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx"}]},
    }


@pytest.mark.parametrize(
    ("mode", "value", "selected"),
    [("one", None, 1), ("all", None, 4), ("fixed", "2", 2), ("fixed", "9", 4), ("fixed-percent", "30", 2)],
)
def test_the_mode_decides_how_many_matching_pods_are_hit(
    driver: KubernetesChaos, emulator_thread: Any, mode: str, value: str | None, selected: int
) -> None:
    emulator_thread.call(lambda: _pods_labelled(emulator_thread.emulator, 4))
    experiment = chaos.pod_failure(target="web", mode=mode, **({"value": value} if value else {}))
    with driver.inject(experiment, name=f"hft-{mode}") as run:
        ids = [r["id"] for r in run.records]
    assert len(ids) == len(set(ids)) == selected  # fixed-percent 30% of 4: ceil(1.2) = 2
    assert set(ids) <= {f"hft/web-{i}" for i in range(4)}
    with driver.inject(chaos.stress_cpu(target="web", mode="all"), name="hft-stress") as run:
        ids = sorted(r["id"] for r in run.records)
    assert ids == sorted(f"hft/web-{i}/{c}" for i in range(4) for c in ("nginx", "exporter"))  # per container
