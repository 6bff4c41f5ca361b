"""The Kubernetes chaos driver: Chaos Mesh custom resources through ``CustomObjectsApi``.

Creates an experiment in the test namespace, waits (bounded) for ``AllInjected`` with container
records, and always removes it: in the context manager's ``finally``, on SIGINT and at exit (through
:mod:`pytest_hftk8s.chaos.registry`). :meth:`KubernetesChaos.sweep` deletes whatever a killed run
left behind. Every request goes through :class:`~pytest_hftk8s.cluster.kubernetes.KubeApi`; this
module never imports ``kubernetes`` itself and knows nothing of the local backend. Whether a
stress reached its intensity is judged from Prometheus (cAdvisor sees chaos-daemon's stress-ng in
the target container's cgroup) by :mod:`pytest_hftk8s.slo.intensity`, as on every backend.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypedDict

from pytest_hftk8s.chaos import registry
from pytest_hftk8s.chaos.driver import ChaosRun
from pytest_hftk8s.chaos.experiments import (
    GROUP,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    VERSION,
    Experiment,
    Schedule,
)
from pytest_hftk8s.chaos.safety import check_allowed, dry_run
from pytest_hftk8s.cluster.kubernetes.api import ApiNotFound, KubeApi
from pytest_hftk8s.errors import ChaosError, ClusterError

if TYPE_CHECKING:
    from pytest_hftk8s.cluster.kubernetes.cluster import KubernetesCluster

__all__ = ["CHAOS_PLURALS", "KubernetesChaos"]

#: Every kind the plugin creates, swept by label at session start.
CHAOS_PLURALS = ("stresschaos", "podchaos", "networkchaos", "schedules")


class ChaosEventPayload(TypedDict, total=False):
    type: str  # "Succeeded" | "Failed"
    operation: str  # "Apply" | "Recover"
    message: str
    timestamp: str


class ContainerRecordPayload(TypedDict, total=False):
    id: str
    phase: str
    selectorKey: str
    injectedCount: int
    recoveredCount: int
    events: list[ChaosEventPayload]


def _condition(obj: dict[str, Any], kind: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _records(obj: dict[str, Any]) -> list[ContainerRecordPayload]:
    return list(((obj.get("status") or {}).get("experiment") or {}).get("containerRecords") or [])


def _failures(records: Iterable[ContainerRecordPayload]) -> list[str]:
    return [
        f"{rec.get('id', '?')}: {ev.get('operation', '')} failed: {ev.get('message', '')}".strip()
        for rec in records
        for ev in rec.get("events") or []
        if ev.get("type") == "Failed"
    ]


class KubernetesChaos:
    """Injects experiments into one namespace of one kube context."""

    def __init__(
        self,
        api: KubeApi,
        *,
        namespace: str,
        run_id: str,
        allowed_contexts: Iterable[str] = (),
        dry_run: bool = False,
        inject_timeout: float = 60.0,
        recover_timeout: float = 60.0,
        poll_interval: float = 0.5,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.run_id = run_id
        self.allowed_contexts = tuple(allowed_contexts)
        self.dry_run = dry_run
        self.inject_timeout = inject_timeout
        self.recover_timeout = recover_timeout
        self.poll_interval = poll_interval
        self.echo = echo
        self._custom = api.custom_objects()

    @classmethod
    def for_cluster(cls, cluster: KubernetesCluster, **kwargs: Any) -> KubernetesChaos:
        """A driver on the same client and namespace as a :class:`KubernetesCluster`."""
        return cls(cluster.api, namespace=cluster.namespace, **kwargs)

    @contextlib.contextmanager
    def inject(self, experiment: Experiment | Schedule, *, name: str | None = None) -> Iterator[ChaosRun]:
        """Create ``experiment``, wait for injection, yield; remove it however the block ends."""
        run = ChaosRun.for_experiment(
            experiment, namespace=self.namespace, run_id=self.run_id, name=name, dry_run=self.dry_run
        )
        obj = run.object
        if self.dry_run:
            with dry_run(run, echo=self.echo):
                yield run
            return
        check_allowed(context=self.api.context, allowed=self.allowed_contexts, what=f"{run.kind} {run.name}")
        registry.register(run.key, lambda: self.remove(run))
        interrupted = False
        try:
            try:
                self._call("create", run, self._custom.create_namespaced_custom_object, body=obj)
            except ClusterError as e:
                raise ChaosError(f"{run.kind} {run.name} could not be created: {e}") from e
            if not isinstance(experiment, Schedule):  # a Schedule injects nothing by itself
                self._wait_injected(run)
            yield run
        except BaseException as e:
            interrupted = not isinstance(e, Exception)
            raise
        finally:
            try:
                self.remove(run)
                if not experiment.one_shot and not interrupted:
                    self._wait_recovered(run)
            finally:
                registry.unregister(run.key)
                run.ended_at = time.time()

    def _call(self, verb: str, run: ChaosRun, fn: Callable[..., Any], **kwargs: Any) -> Any:
        args: tuple[Any, ...] = (GROUP, VERSION, run.namespace, run.plural)
        if verb != "create":
            args += (run.name,)
        return self.api.call_api(f"{verb} {run.kind} {run.name} in {run.namespace}", fn, *args, **kwargs)

    def _get(self, run: ChaosRun) -> dict[str, Any] | None:
        try:
            return dict(self._call("read", run, self._custom.get_namespaced_custom_object))
        except ApiNotFound:
            return None

    def _wait_injected(self, run: ChaosRun) -> None:
        deadline = time.monotonic() + self.inject_timeout
        obj: dict[str, Any] | None = None
        while True:
            obj = self._get(run)
            if obj is None:
                raise ChaosError(
                    f"{run.kind} {run.name} vanished before injection; was it deleted by someone else?"
                )
            run.records = _records(obj)
            if _condition(obj, "AllInjected") and run.records:
                run.injected_at = time.time()
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(self.poll_interval)
        failures = _failures(run.records)
        conditions = [
            f"{c.get('type')}={c.get('status')}" for c in (obj.get("status") or {}).get("conditions") or []
        ]
        selector = obj.get("spec", {}).get("selector", {}).get("labelSelectors")
        raise ChaosError(
            f"{run.kind} {run.name} was not injected within {self.inject_timeout:g}s: expected condition "
            f"AllInjected=True with container records; seen conditions [{', '.join(conditions) or 'none'}], "
            f"{len(run.records)} container record(s). "
            + (
                "Failures: " + "; ".join(failures) + "."
                if failures
                else f"No failure events: check that the selector {selector} matches running pods and "
                f"that chaos-daemon runs on their nodes."
            )
        )

    def _wait_recovered(self, run: ChaosRun) -> None:
        deadline = time.monotonic() + self.recover_timeout
        while True:
            obj = self._get(run)
            if obj is None or _condition(obj, "AllRecovered"):
                return
            if time.monotonic() >= deadline:
                failures = _failures(_records(obj))
                raise ChaosError(
                    f"{run.kind} {run.name} did not recover within {self.recover_timeout:g}s of its deletion: "
                    f"expected AllRecovered=True or the object gone. Failures: {'; '.join(failures) or 'none'}. "
                    f"Check its finalizers and the chaos-controller-manager logs."
                )
            time.sleep(self.poll_interval)

    def remove(self, run: ChaosRun) -> None:
        """Delete the experiment once; later calls (finally, SIGINT, atexit) are no-ops."""
        with run._lock:
            if run.removed:
                return
            with contextlib.suppress(ApiNotFound):
                self._call("delete", run, self._custom.delete_namespaced_custom_object)
            run.removed = True

    def sweep(self, namespace: str | None = None) -> list[str]:
        """Delete every chaos object carrying the plugin's label (left by a killed run)."""
        ns = namespace or self.namespace
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
        removed: list[str] = []
        for plural in CHAOS_PLURALS:
            try:
                listing = self.api.call_api(
                    f"list {plural} in {ns}",
                    self._custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    ns,
                    plural,
                    label_selector=selector,
                )
            except ApiNotFound:  # Chaos Mesh (or this CRD) is not installed: nothing to sweep
                continue
            for item in listing.get("items") or []:
                meta = item.get("metadata") or {}
                if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
                    continue  # never delete what is not ours, even if a server ignores the selector
                name = str(meta.get("name"))
                with contextlib.suppress(ApiNotFound):
                    self.api.call_api(
                        f"delete {plural}/{name} in {ns}",
                        self._custom.delete_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        ns,
                        plural,
                        name,
                    )
                removed.append(f"{plural}/{name}")
        return removed
