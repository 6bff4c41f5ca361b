"""A Kubernetes API server stand-in for the kubernetes backend and the Chaos Mesh driver.

:class:`Emulator` is the package's :class:`~pytest_hftk8s.cluster.emulated.apiserver.ApiServer`
(kmock's in-memory object store over real HTTP, plus server-side apply, label and field selectors,
namespaces, SelfSubjectAccessReviews, ``/version``, the Chaos Mesh CRDs and the websocket
subresources), served on its own loop thread because the code under test uses the synchronous
``kubernetes`` client. What it adds is scripted, for these tests:

* the hooks behind the subresources: ``exec`` answers ``getent ahosts NAME`` from ``emulator.dns``
  (exit 2 when the name is unknown, as getent does); ``portforward`` reaches an echo server on
  loopback (it answers each chunk it reads prefixed with ``echo:``) by default, or
  ``emulator.portforward_to`` (a real server on loopback); ``pods/log`` answers from
  ``emulator.cluster.logs`` (pod name -> text; empty when absent), honouring ``tailLines``;
* ``emulator.cluster`` (:mod:`kube_controllers`), off unless ``emulator.controllers_on``: what the
  controllers and kubelet of a real cluster make of applied objects (pods, claims, endpoint slices,
  statuses, events, faults such as ImagePullBackOff);
* a Chaos Mesh controller that does what Chaos Mesh does: it selects pods from the emulator's own Pod
  objects by the experiment's selector (namespaces, labelSelectors; modes one / all / fixed /
  fixed-percent / random-max-percent), records them in ``status.experiment.containerRecords``, kills
  them for pod-kill, and when nothing matches reports what Chaos Mesh reports (chaos-mesh#3374:
  ``Selected=False`` beside a vacuous ``AllInjected=True``, no records, and a Warning event
  ``Failed to select targets: no pod is selected``). On deletion it recovers and drops its finalizer,
  unless the object is named in ``emulator.stuck_finalizers``.

Everything the client sent stays in ``emulator.requests()`` for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import math
import pathlib
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import kmock
import pytest
from kube_controllers import HOST_IP, NODE, ClusterControllers

from pytest_hftk8s.cluster.emulated.apiserver import (
    CHAOS_GROUP,
    ApiServer,
    ExecResult,
    ServedApi,
    write_kubeconfig,
)


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).isoformat().replace("+00:00", "Z")


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The default pod port behind a port-forward: each chunk back, prefixed with ``echo:``."""
    try:
        while chunk := await reader.read(65536):
            writer.write(b"echo:" + chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class Emulator(ApiServer):
    """The package's API server stand-in plus scripted exec, port-forward, logs, controllers and
    Chaos Mesh; see the module docstring."""

    def setup(self) -> None:
        super().setup()
        self.chaos_behaviour = "inject"  # "inject" | "fail" (records Not Injected) | "silent"
        self.stuck_finalizers: set[str] = set()  # chaos objects whose finalizer is never released
        self.recover_delay = 0.2
        self._seen: dict[Any, float] = {}
        self._random = random.Random(3)
        self.dns: dict[str, list[str]] = {}  # what getent resolves inside every pod
        self.portforward_to: tuple[str, int] | None = None
        self.controllers_on = False
        self.controller_errors: list[str] = []
        self.cluster = ClusterControllers(self)
        self.install_crds()  # Chaos Mesh's kinds are served (and listable while empty)
        self.exec_hook = self._exec_in_pod
        self.forward_hook = self._pod_port
        self.log_hook = self._pod_log
        self._echo_server = asyncio.ensure_future(asyncio.start_server(_echo, "127.0.0.1", 0))
        self.objects["v1/nodes", None, NODE] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE, "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": HOST_IP},
                    {"type": "Hostname", "address": NODE},
                ],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            },
        }

    async def __aexit__(self, *exc_info: Any) -> None:
        echo = self._echo_server
        if not echo.done():
            echo.cancel()
        elif not echo.cancelled() and echo.exception() is None:
            echo.result().close()
            await echo.result().wait_closed()
        await super().__aexit__(*exc_info)

    # -- the hooks behind pods/exec, pods/portforward and pods/log --------------------------------

    async def _exec_in_pod(self, namespace: str, pod: str, container: str, argv: list[str]) -> ExecResult:
        """``getent ahosts NAME`` against :attr:`dns`: its lines and exit 0, or exit 2 (not found)."""
        addresses = self.dns.get(argv[-1], []) if argv[:2] == ["getent", "ahosts"] else []
        if not addresses:
            return 2, b"", b""
        lines = "".join(f"{a}      STREAM {argv[-1]}\n{a}      DGRAM\n" for a in addresses)
        return 0, lines.encode(), b""

    async def _pod_port(self, namespace: str, pod: str, port: int) -> tuple[str, int]:
        """Where a port-forward lands: :attr:`portforward_to` if set, else the echo server."""
        if self.portforward_to is not None:
            return self.portforward_to
        server = await self._echo_server
        host, echo_port = server.sockets[0].getsockname()[:2]
        return host, echo_port

    async def _pod_log(self, namespace: str, pod: str, container: str | None, tail: int) -> str:
        """The last ``tail`` lines of ``cluster.logs[pod]`` (nothing logged yet: empty)."""
        lines = self.cluster.logs.get(pod, "").splitlines(keepends=True)
        return "".join(lines[max(len(lines) - tail, 0) :])

    async def controllers(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            async with self._lock:
                try:
                    if self.controllers_on:
                        self.cluster.reconcile()
                    self.cluster.release_claims()
                    for key, obj in list(self.objects.items()):
                        resource = key[0]
                        if (
                            resource.group == CHAOS_GROUP
                            and resource.plural != "schedules"
                            and not obj.deleted
                        ):
                            self._reconcile_chaos(key, obj)
                except Exception as e:  # keep reconciling; a test that depends on it says what broke
                    self.controller_errors.append(f"{type(e).__name__}: {e}")

    # -- the Chaos Mesh stand-in ----------------------------------------------------------------

    def _reconcile_chaos(self, key: Any, obj: Any) -> None:
        seen = self._seen.setdefault(key, time.monotonic())
        meta = obj.get("metadata", {})
        if meta.get("deletionTimestamp"):
            if meta.get("name") in self.stuck_finalizers:
                return  # chaos-controller-manager cannot recover it (or is not running)
            if (
                time.monotonic() - self._seen.setdefault((key, "deleted"), time.monotonic())
                >= self.recover_delay
            ):
                records = _records(obj)
                for record in records:
                    record["phase"] = "Not Injected"
                conditions = [{"type": "AllRecovered", "status": "True"}]
                obj.patch(
                    {
                        "status": {
                            "conditions": conditions,
                            "experiment": {"containerRecords": records or None},
                        }
                    }
                )
                obj.delete()  # finalizer released: the object is gone
                self._seen.pop((key, "deleted"), None)
                self._seen.pop(key, None)
            return
        if "status" in obj or time.monotonic() - seen < 0.1 or self.chaos_behaviour == "silent":
            return
        info = self.resources.get(key[0])
        kind = obj.get("kind") or (info.kind if info is not None else "?")
        self._chaos_event(key, obj, kind, "Normal", "FinalizerInited", "Finalizer has been inited")
        targets = self._select(key[1], obj.get("spec") or {})
        if isinstance(targets, str):  # what Chaos Mesh 2.x leaves (chaos-mesh/chaos-mesh#3374)
            conditions = [
                {"type": "Selected", "status": "False"},
                {"type": "AllInjected", "status": "True"},
                {"type": "AllRecovered", "status": "True"},
                {"type": "Paused", "status": "False"},
            ]
            self._chaos_event(key, obj, kind, "Warning", "Failed", f"Failed to select targets: {targets}")
            obj.patch({"metadata": {"finalizers": ["chaos-mesh/records"]},
                       "status": {"conditions": conditions, "experiment": {"desiredPhase": "Run"}}})  # fmt: skip
            return
        ids = self._record_ids(kind, obj.get("spec") or {}, targets)
        injected = self.chaos_behaviour == "inject"
        records = []
        for record_id in ids:
            if injected:
                event = {"type": "Succeeded", "operation": "Apply", "timestamp": _now()}
                self._chaos_event(
                    key, obj, kind, "Normal", "Applied", f"Successfully apply chaos for {record_id}"
                )
            else:
                message = (
                    "rpc error: code = Unknown desc = stress-ng: cannot attach to the container's cgroup"
                )
                event = {"type": "Failed", "operation": "Apply", "message": message, "timestamp": _now()}
                self._chaos_event(key, obj, kind, "Warning", "Failed", f"Failed to apply chaos: {message}")
            records.append(
                {
                    "id": record_id,
                    "phase": "Injected" if injected else "Not Injected",
                    "selectorKey": ".",
                    "injectedCount": int(injected),
                    "recoveredCount": 0,
                    "events": [event],
                }
            )
        if injected and (obj.get("spec") or {}).get("action") == "pod-kill":
            for pod in targets:
                pod.delete()  # the controllers (when on) bring a replacement, as ReplicaSets do
        conditions = [
            {"type": "Selected", "status": "True"},
            {"type": "AllInjected", "status": str(injected)},
            {"type": "AllRecovered", "status": "False"},
            {"type": "Paused", "status": "False"},
        ]
        obj.patch({"metadata": {"finalizers": ["chaos-mesh/records"]},
                   "status": {"conditions": conditions,
                              "experiment": {"desiredPhase": "Run", "containerRecords": records}}})  # fmt: skip

    def _select(self, namespace: str, spec: dict[str, Any]) -> list[Any] | str:
        """Chaos Mesh's pod selection: namespaces x labelSelectors, then the mode; or why none."""
        selector = spec.get("selector") or {}
        namespaces = selector.get("namespaces") or [namespace]
        labels = selector.get("labelSelectors") or {}
        pods = [
            pod
            for (resource, ns, _name), pod in sorted(self.objects.items(), key=lambda kv: str(kv[0][2]))
            if f"{resource.version}/{resource.plural}" == "v1/pods"
            and not resource.group
            and not pod.deleted
            and ns in namespaces
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and all(((pod.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in labels.items())
        ]
        if not pods:
            return "no pod is selected"
        mode, value = spec.get("mode", "one"), str(spec.get("value") or "0")
        if mode == "one":
            return [self._random.choice(pods)]
        if mode == "all":
            return pods
        number = int(value)
        if mode in ("fixed-percent", "random-max-percent"):
            if number == 0:
                return "cannot select any object as value below or equal 0"
            percent = number if mode == "fixed-percent" else self._random.randint(0, number)
            number = math.ceil(len(pods) * percent / 100)
        elif number <= 0:
            return "cannot select any object as value below or equal 0"
        return self._random.sample(pods, min(number, len(pods)))

    @staticmethod
    def _record_ids(kind: str, spec: dict[str, Any], pods: list[Any]) -> list[str]:
        """StressChaos and container-kill act on containers (``ns/pod/container``), the rest on pods."""
        per_container = kind == "StressChaos" or spec.get("action") == "container-kill"
        ids = []
        for pod in pods:
            meta = pod.get("metadata") or {}
            base = f"{meta.get('namespace')}/{meta.get('name')}"
            if not per_container:
                ids.append(base)
                continue
            names = spec.get("containerNames") or [
                c.get("name") for c in (pod.get("spec") or {}).get("containers") or []
            ]
            ids.extend(f"{base}/{name}" for name in names)
        return ids

    def _chaos_event(
        self, key: Any, obj: Any, kind: str, kind_of_event: str, reason: str, message: str
    ) -> None:
        meta = obj.get("metadata") or {}
        name = f"{meta.get('name')}.{abs(hash((reason, message))) % 10**8:08d}"
        self.objects["v1/events", key[1], name] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": key[1], "creationTimestamp": _now()},
            "involvedObject": {
                "apiVersion": "chaos-mesh.org/v1alpha1",
                "kind": kind,
                "name": meta.get("name"),
                "namespace": key[1],
                "uid": meta.get("uid", ""),
            },
            "reason": reason,
            "message": message,
            "type": kind_of_event,
            "source": {"component": "chaos-controller-manager"},
            "firstTimestamp": _now(),
            "lastTimestamp": _now(),
            "count": 1,
        }

    def requests(self) -> list[kmock.Request]:
        return list(self)


def _records(obj: Any) -> list[dict[str, Any]]:
    return list(((obj.get("status") or {}).get("experiment") or {}).get("containerRecords") or [])


class EmulatorThread(ServedApi):
    """Runs an :class:`Emulator` and its HTTP server, with its controllers, on a private loop thread."""

    def __init__(self, make: Callable[[], Emulator] | None = None) -> None:
        super().__init__(make or Emulator, background=self._controllers)
        self.emulator: Emulator = self.api

    @staticmethod
    async def _controllers(emulator: Emulator) -> None:
        await emulator.controllers()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the emulator's loop under its lock (where its objects may be touched safely)."""
        return self.locked(fn, timeout=5)

    def wait_for(self, check: Callable[[], Any], *, what: str, timeout: float = 10.0) -> Any:
        """Poll ``check`` on the emulator's loop until it returns something truthy (bounded)."""
        deadline = time.monotonic() + timeout
        while not (found := self.call(check)):
            errors = self.emulator.controller_errors[-3:]
            assert time.monotonic() < deadline, (
                f"emulator: {what} not seen within {timeout:g}s; errors: {errors}"
            )
            time.sleep(0.05)
        return found


@pytest.fixture
def emulator_thread() -> Iterator[EmulatorThread]:
    thread = EmulatorThread()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def emulator(emulator_thread: EmulatorThread) -> Emulator:
    return emulator_thread.emulator


@pytest.fixture
def kubeconfig(emulator_thread: EmulatorThread, tmp_path: pathlib.Path) -> str:
    """A kubeconfig with context ``emulated`` pointing at the emulator (bearer token auth)."""
    return write_kubeconfig(tmp_path / "kubeconfig.yaml", server=emulator_thread.url)


@pytest.fixture
def body_of() -> Callable[[kmock.Request], Any]:
    """The JSON body a request carried (whatever its content type said)."""
    return lambda request: json.loads(request.body) if request.body else None


PLATFORM_PODS = 6  # one per workload of the local overlay


def _pods(emulator: Emulator) -> list[Any]:
    return [o for k, o in emulator.objects.items() if str(k[0].plural) == "pods" and not o.deleted]


@pytest.fixture
def platform(emulator_thread: EmulatorThread, kubeconfig: str) -> Iterator[Any]:
    """The rendered ``local`` overlay applied to namespace ``hft`` through the backend, with the
    emulated controllers running: realistic pods (one per workload), claims, slices and DNS."""
    from pytest_hftk8s.cluster.kubernetes import KubernetesCluster
    from pytest_hftk8s.manifests import render

    emulator = emulator_thread.emulator
    emulator.controllers_on = True
    cluster = KubernetesCluster(context="emulated", namespace="hft", kubeconfig=kubeconfig, delete_timeout=10)
    cluster.apply(render("local"))
    emulator_thread.wait_for(lambda: len(_pods(emulator)) >= PLATFORM_PODS, what="the platform's pods")
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def running_pods(emulator_thread: EmulatorThread) -> list[Any]:
    """The ``local`` overlay's workloads stored straight into the emulator (no client requests in its
    journal) in namespace ``hft``, and the pods the emulated controllers run for them."""
    from pytest_hftk8s.manifests import render

    emulator = emulator_thread.emulator

    def store() -> None:
        for obj in render("local"):
            if obj["kind"] in ("Deployment", "StatefulSet", "Service"):
                plural = {"Deployment": "apps/v1/deployments", "StatefulSet": "apps/v1/statefulsets"}
                resource = plural.get(obj["kind"], "v1/services")
                emulator.objects[resource, "hft", obj["metadata"]["name"]] = {
                    **obj,
                    "metadata": {**obj["metadata"], "namespace": "hft"},
                }
        emulator.controllers_on = True

    emulator_thread.call(store)
    emulator_thread.wait_for(lambda: len(_pods(emulator)) >= PLATFORM_PODS, what="the platform's pods")
    return emulator_thread.call(lambda: [o.raw for o in _pods(emulator)])


@pytest.fixture
def kubeconfig_for(emulator_thread: EmulatorThread, tmp_path: pathlib.Path) -> Callable[[str], str]:
    """``kubeconfig_for(context)``: a kubeconfig whose one context, so named (``kind-hft``), is the emulator."""
    return lambda context: write_kubeconfig(
        tmp_path / f"{context}.yaml", server=emulator_thread.url, context=context
    )
