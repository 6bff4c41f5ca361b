"""``--hft-cluster=emulated``: the kubernetes backend, unchanged, against an API whose pods are real.

No Kubernetes API server runs on a machine without containers, so this backend starts a stand-in on
loopback (:mod:`.apiserver`, kmock's store with the API conventions our client relies on), writes a
kubeconfig context for it (:data:`CONTEXT`), and puts a controller behind it (:mod:`.bridge`) that
makes applied objects real with the local cluster: pods are process groups with cgroup limits, Chaos
Mesh objects are carried out by the local chaos driver. Everything above talks to it through the
official client, server-side apply, Chaos Mesh custom resources and PromQL, as on any context.

What it is not: a conformance-tested API server (no admission, no RBAC beyond access reviews, no
watch bookmarks or resourceVersion semantics, merge-patch instead of field ownership), nor a
scheduler (one node: this machine), nor kube-proxy (ClusterIPs are not routable; a LoadBalancer
Service's address is one ready pod's loopback address).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_hftk8s.chaos import registry
from pytest_hftk8s.chaos.safety import EMULATED_CONTEXT
from pytest_hftk8s.cluster.emulated.apiserver import ApiServer, ServedApi, write_kubeconfig
from pytest_hftk8s.cluster.emulated.bridge import FAULTS, STAND_IN, Bridge, Faults, node_object
from pytest_hftk8s.cluster.kubernetes import KubernetesCluster
from pytest_hftk8s.results import PreflightCheck

__all__ = ["CONTEXT", "FAULTS", "EmulatedCluster", "EmulatedEnvironment", "Faults"]

CONTEXT = EMULATED_CONTEXT


def _seed(api: ApiServer, faults: Faults) -> None:
    """What a cluster with Chaos Mesh and kube-state-metrics installed shows the preflight, but for
    what ``faults`` takes away (``missing``, ``unready``, ``deny``)."""
    api.denied |= set(faults.denied)
    api.store("v1/nodes", node_object())
    for ns in ("default", "kube-system", "chaos-mesh"):
        api.namespaces[ns] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                              "status": {"phase": "Active"}}  # fmt: skip
    ksm = {"app.kubernetes.io/name": "kube-state-metrics"}
    api.store("apps/v1/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "kube-state-metrics", "namespace": "kube-system", "labels": ksm,
                     "annotations": {STAND_IN: "the local cluster's exporter (kube-state-metrics series)"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": ksm}, "template": {"metadata": {"labels": ksm}}},
        "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1},
    })  # fmt: skip
    if "storage-class" not in faults.missing:
        _storage_class(api)
    if "chaos-mesh" not in faults.missing:
        api.install_crds()
        _chaos_daemon(api, ready=0 if "chaos-daemon" in faults.unready else 1)


def _storage_class(api: ApiServer) -> None:
    api.store("storage.k8s.io/v1/storageclasses", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "local-dir", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "hftk8s.io/local-dir", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
    })  # fmt: skip


def _chaos_daemon(api: ApiServer, *, ready: int) -> None:
    labels = {"app.kubernetes.io/name": "chaos-mesh", "app.kubernetes.io/instance": "chaos-mesh",
              "app.kubernetes.io/component": "chaos-daemon"}  # fmt: skip
    api.store("apps/v1/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "chaos-daemon", "namespace": "chaos-mesh", "labels": labels,
                     "annotations": {STAND_IN: "the local chaos driver (stress-ng in cgroups)"}},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "containers": [{"name": "chaos-daemon", "image": "ghcr.io/chaos-mesh/chaos-daemon:v2.8.4",
                            "command": ["/usr/local/bin/chaos-daemon"]}]}}},
        "status": {"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberAvailable": ready,
                   "numberReady": ready, "numberUnavailable": 1 - ready, "updatedNumberScheduled": 1,
                   "observedGeneration": 1},
    })  # fmt: skip


class EmulatedEnvironment:
    """The API stand-in, its kubeconfig and the bridge, started together and stopped together."""

    def __init__(
        self,
        *,
        state_dir: Path,
        faults: Faults | None = None,
        backoff_scale: float = 1.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.served = ServedApi(ApiServer)
        faults = faults or Faults()
        try:
            self.served.locked(lambda: _seed(self.served.api, faults))
            directory = state_dir / "emulated"
            directory.mkdir(parents=True, exist_ok=True)
            self.kubeconfig = write_kubeconfig(
                directory / f"kubeconfig-{secrets.token_hex(3)}.yaml", server=self.served.url, context=CONTEXT
            )
            self.bridge = Bridge(
                self.served,
                state_dir=state_dir,
                faults=faults,
                backoff_scale=backoff_scale,
                progress=progress,
            )
            self.bridge.start()
        except BaseException:
            self.served.stop()
            raise
        self._key = f"emulated/{self.served.url}"
        registry.register(self._key, self.stop)
        self._stopped = False

    @property
    def url(self) -> str:
        return self.served.url

    def stop(self) -> None:
        """Remove every fault and pod, then stop the API (idempotent; SIGINT and atexit call it too)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.bridge.stop()
        finally:
            self.served.stop()
            registry.unregister(self._key)
            Path(self.kubeconfig).unlink(missing_ok=True)
            _remove_empty(Path(self.kubeconfig).parent)


def _remove_empty(directory: Path) -> None:
    """Remove the namespaces' state directories the bridge's local clusters emptied, then ``directory``
    itself when nothing else is in it (another emulated session's files stay: rmdir fails on them)."""
    for path in [*directory.glob("*/"), directory]:
        with contextlib.suppress(OSError):
            path.rmdir()


class EmulatedCluster(KubernetesCluster):
    """The kubernetes backend on the context of an :class:`EmulatedEnvironment` it owns."""

    def __init__(
        self,
        *,
        namespace: str,
        state_dir: Path,
        faults: Sequence[str] = (),
        backoff_scale: float = 1.0,
        progress: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        registry.install_guards()  # here, on the main thread: SIGTERM then unwinds like Ctrl-C
        self.environment = EmulatedEnvironment(
            state_dir=state_dir, faults=Faults.parse(faults), backoff_scale=backoff_scale, progress=progress
        )
        try:
            super().__init__(
                context=CONTEXT, namespace=namespace, kubeconfig=self.environment.kubeconfig,
                progress=progress, **kwargs,
            )  # fmt: skip
        except BaseException:
            self.environment.stop()
            raise
        self.kubeconfig = self.environment.kubeconfig

    def preflight(self, *, images: Sequence[str] = (), chaos: bool = True) -> list[PreflightCheck]:
        """This machine's prerequisites (the local cluster's rows), then the API's (as on any context)."""
        from pytest_hftk8s.cluster.local import preflight as local_preflight

        return [
            *local_preflight.checks(images=(), chaos=chaos),
            *super().preflight(images=images, chaos=chaos),
        ]

    def share(self) -> Mapping[str, str]:
        return {**super().share(), "kubeconfig": self.kubeconfig}

    def close(self) -> None:
        """Stop the API and every pod behind it: they live in this process (``--hft-keep`` cannot keep
        them; it keeps objects only on a real cluster)."""
        if self.environment.bridge.deployed():
            self.progress("emulated cluster: its API and pods live in this process and stop with it")
        try:
            super().close()
        finally:
            self.environment.stop()
