"""The Kubernetes chaos driver: Chaos Mesh custom resources through ``CustomObjectsApi``.

Creates an experiment in the test namespace, waits (bounded) for ``AllInjected`` with container
records, and always removes it: in the context manager's ``finally``, on SIGINT and at exit (through
:mod:`pytest_hftk8s.chaos.registry`). An experiment whose selector matches no pod is a failure, and
a prompt one: Chaos Mesh then reports ``Selected=False`` next to a vacuous ``AllInjected=True`` and no
container records (chaos-mesh/chaos-mesh#3374), with a ``Failed to select targets`` Warning event on
the object. :meth:`KubernetesChaos.sweep` deletes whatever a killed run left behind, and reports an
object stuck on its finalizer with the command that releases it instead of waiting for it forever.
Every request goes through :class:`~pytest_hftk8s.cluster.kubernetes.KubeApi`; this
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
from pytest_hftk8s.cluster.kubernetes.ownership import NAMESPACE_LABEL, RUN_ID_LABEL, force_finalizers_command
from pytest_hftk8s.errors import ChaosError, ClusterError

if TYPE_CHECKING:
    from pytest_hftk8s.cluster.kubernetes.cluster import KubernetesCluster

__all__ = ["CHAOS_PLURALS", "KubernetesChaos"]

#: Every kind the plugin creates, swept by label at session start.
CHAOS_PLURALS = ("stresschaos", "podchaos", "networkchaos", "schedules")
_KINDS = {
    "stresschaos": "StressChaos",
    "podchaos": "PodChaos",
    "networkchaos": "NetworkChaos",
    "schedules": "Schedule",
}
#: The Warning event Chaos Mesh records when a selector matches nothing ("Failed to select targets:
#: no pod is selected"): selection is not retried, so the experiment will never inject.
SELECT_FAILED_PREFIX = "Failed to select targets"


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


def _condition(obj: dict[str, Any], kind: str, status: str = "True") -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == status for c in conditions)


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
        select_grace: float = 5.0,
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
        #: How long the #3374 status (Selected=False, no records) may last before it counts as a
        #: selection failure even without its event (the condition controller may run first).
        self.select_grace = select_grace
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
                body = {**obj, "metadata": {**obj["metadata"]}}
                body["metadata"]["labels"] = {
                    **body["metadata"].get("labels", {}),
                    NAMESPACE_LABEL: run.namespace,
                }
                self._call("create", run, self._custom.create_namespaced_custom_object, body=body)
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
        started = time.monotonic()
        deadline = started + self.inject_timeout
        obj: dict[str, Any] | None = None
        unselected_since: float | None = None
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
            if _condition(obj, "Selected", "False") and not run.records:
                unselected_since = unselected_since or time.monotonic()
                failed = self._selection_failed(run)
                if failed or time.monotonic() - unselected_since >= self.select_grace:
                    raise ChaosError(self._no_target(run, obj, failed, time.monotonic() - started))
            else:
                unselected_since = None
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

    def _selection_failed(self, run: ChaosRun) -> str:
        """The message of Chaos Mesh's ``Failed to select targets`` event on ``run``'s object, if any."""
        fields = f"involvedObject.name={run.name},involvedObject.kind={run.kind}"
        try:
            listing = self.api.request(
                "GET",
                f"/api/v1/namespaces/{run.namespace}/events",
                what=f"list the events of {run.kind} {run.name}",
                query=[("fieldSelector", fields)],
            )
        except ClusterError:
            return ""  # no events to read (RBAC): the status alone decides, after select_grace
        for event in listing.get("items") or []:
            involved = event.get("involvedObject") or {}
            message = str(event.get("message") or "")
            if (
                involved.get("name") == run.name
                and involved.get("kind") == run.kind
                and message.startswith(SELECT_FAILED_PREFIX)
            ):
                return message
        return ""

    def _no_target(self, run: ChaosRun, obj: dict[str, Any], event: str, waited: float) -> str:
        spec = obj.get("spec") or {}
        selector = spec.get("selector") or {}
        conditions = [
            f"{c.get('type')}={c.get('status')}" for c in (obj.get("status") or {}).get("conditions") or []
        ]
        return (
            f"{run.kind} {run.name} selected no pod after {waited:.1f}s: expected its selector to match "
            f"running pods (mode {spec.get('mode')!r}, namespaces {selector.get('namespaces')}, labels "
            f"{selector.get('labelSelectors')}); seen conditions [{', '.join(conditions)}] and no container "
            f"records{f', event: {event!r}' if event else ''}. Chaos Mesh reports this AllInjected=True "
            f"without records (chaos-mesh/chaos-mesh#3374) and never retries: check the target's pods with "
            f"`kubectl -n {run.namespace} get pods -l "
            f"{','.join(f'{k}={v}' for k, v in (selector.get('labelSelectors') or {}).items())}`."
        )

    def _wait_recovered(self, run: ChaosRun) -> None:
        deadline = time.monotonic() + self.recover_timeout
        while True:
            obj = self._get(run)
            if obj is None or _condition(obj, "AllRecovered"):
                return
            if time.monotonic() >= deadline:
                failures = _failures(_records(obj))
                finalizers = (obj.get("metadata") or {}).get("finalizers") or []
                command = force_finalizers_command(
                    namespace=run.namespace, resource=run.plural, name=run.name
                )
                raise ChaosError(
                    f"{run.kind} {run.name} did not recover within {self.recover_timeout:g}s of its deletion: "
                    f"expected AllRecovered=True or the object gone; it still holds finalizers {finalizers}. "
                    f"Failures: {'; '.join(failures) or 'none'}. Check the chaos-controller-manager and "
                    f"chaos-daemon logs (the fault may still be active in the target); once it is gone, "
                    f"release the object with `{command}`."
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

    def sweep(
        self,
        namespace: str | None = None,
        *,
        keep_run_id: str | None = None,
        finalizer_timeout: float = 10.0,
    ) -> list[str]:
        """Delete every chaos object carrying the plugin's label (left by a killed run) but those of run
        ``keep_run_id``; wait up to ``finalizer_timeout`` for them to go. Returns ``Kind/name`` of each;
        one still held by its finalizer is listed with the command that releases it."""
        ns = namespace or self.namespace
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
        deleted: list[tuple[str, str]] = []
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
                labels = meta.get("labels") or {}
                if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
                    continue  # never delete what is not ours, even if a server ignores the selector
                if keep_run_id is not None and labels.get(RUN_ID_LABEL) == keep_run_id:
                    continue
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
                deleted.append((plural, name))
        stuck = self._wait_gone(ns, deleted, timeout=finalizer_timeout)
        return [
            self._swept(ns, plural, name, stuck.get((plural, name)), finalizer_timeout)
            for plural, name in deleted
        ]

    def _wait_gone(
        self, ns: str, deleted: list[tuple[str, str]], *, timeout: float
    ) -> dict[tuple[str, str], list[str]]:
        """Wait (bounded) for the deleted objects to go; the finalizers of each one left."""
        deadline = time.monotonic() + timeout
        left: dict[tuple[str, str], list[str]] = {key: [] for key in deleted}
        while left:
            for plural, name in list(left):
                try:
                    obj = self.api.call_api(
                        f"read {plural}/{name} in {ns}",
                        self._custom.get_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        ns,
                        plural,
                        name,
                    )
                except ApiNotFound:
                    del left[(plural, name)]
                    continue
                left[(plural, name)] = list((obj.get("metadata") or {}).get("finalizers") or [])
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(min(self.poll_interval, 0.2))
        return left

    @staticmethod
    def _swept(ns: str, plural: str, name: str, finalizers: list[str] | None, timeout: float) -> str:
        what = f"{_KINDS[plural]}/{name}"
        if finalizers is None:
            return what
        command = force_finalizers_command(namespace=ns, resource=plural, name=name)
        return (
            f"{what} STUCK: still present {timeout:g}s after its deletion, held by finalizers {finalizers} "
            f"(chaos-controller-manager could not recover it: is it running?); release it with `{command}`"
        )
