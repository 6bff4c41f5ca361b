"""The preflight of a kube context: what the session needs from the cluster, checked before deploying.

One :class:`~pytest_hftk8s.results.PreflightCheck` row per check, with what was found and what to do:
the API server answers (and its version), RBAC through SelfSubjectAccessReviews for every verb the
backend uses, a default StorageClass, Chaos Mesh (its API served and the chaos-daemon ready, with the
runtime of the nodes), a kube-state-metrics already running, and the platform images on the nodes.
Every request is short and the whole run has a budget, so a missing prerequisite is reported within
seconds. It reads only: it never creates, changes or deletes anything in the cluster.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pytest_hftk8s.cluster.kubernetes.api import ApiNotFound, KubeApi
from pytest_hftk8s.cluster.kubernetes.images import provider_of
from pytest_hftk8s.cluster.kubernetes.preflight_rows import (
    CHAOS_DAEMON_LABEL,
    KSM_CHECK,
    chaos_api_row,
    chaos_daemon_row,
    image_row,
    ksm_row,
    rbac_row,
    required_access,
    storage_row,
    version_row,
)
from pytest_hftk8s.errors import ClusterError, ClusterUnavailable
from pytest_hftk8s.results import PreflightCheck

__all__ = ["KSM_CHECK", "KubernetesPreflight"]

#: One request of the preflight (connect + read); a reachable API server answers in milliseconds.
REQUEST_TIMEOUT = 4.0
#: The whole preflight; checks not started by then are reported as not checked.
BUDGET = 20.0
_SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


class KubernetesPreflight:
    """The checks for one context and namespace; :meth:`run` returns the rows, in table order."""

    def __init__(
        self,
        *,
        api: KubeApi,
        namespace: str,
        request_timeout: float = REQUEST_TIMEOUT,
        budget: float = BUDGET,
    ) -> None:
        # A copy sharing the connection pool, with a short timeout of its own for every request.
        self.api = copy.copy(api)
        self.api.request_timeout = min(api.request_timeout, request_timeout)
        self.namespace = namespace
        self.context = api.context
        self.provider = provider_of(api.context)
        self.budget = budget

    def run(self, *, images: Sequence[str] = (), chaos: bool = True) -> list[PreflightCheck]:
        deadline = time.monotonic() + self.budget
        try:
            version = self._get("/version", what="read the server version")
        except ClusterError as e:
            return [
                PreflightCheck(
                    check="API server",
                    ok=False,
                    found=f"context {self.context!r} at {self.api.host} does not answer: {_short(e)}",
                    action=f"start the cluster, or pick a running context: kubectl --context {self.context} "
                    f"get ns; kubectl config get-contexts",
                )
            ]
        rows = [version_row(version, host=self.api.host)]
        nodes: list[Mapping[str, Any]] | None = None

        def listed_nodes() -> list[Mapping[str, Any]] | None:
            nonlocal nodes
            if nodes is None:
                nodes = self._list_or_none("/api/v1/nodes", what="list nodes")
            return nodes

        checks: list[tuple[str, Callable[[], PreflightCheck]]] = [
            ("RBAC", lambda: self._rbac(chaos=chaos)),
            ("default StorageClass", self._storage),
        ]
        if chaos:
            checks += [
                ("Chaos Mesh CRDs", lambda: self._chaos_api(listed_nodes())),
                ("chaos-daemon", lambda: self._chaos_daemon(listed_nodes())),
            ]
        checks.append((KSM_CHECK, self._ksm))
        if images:
            checks.append(
                (
                    "platform images",
                    lambda: image_row(images, listed_nodes(), context=self.context, provider=self.provider),
                )
            )
        for name, check in checks:
            if time.monotonic() >= deadline:
                rows.append(
                    PreflightCheck(
                        check=name,
                        ok=False,
                        found=f"not checked: the preflight's {self.budget:.0f}s budget ran out",
                        action=f"check the API server's latency: kubectl --context {self.context} get --raw /readyz",
                    )
                )
                continue
            rows.append(self._guarded(name, check))
        return rows

    # -- the checks that need requests -------------------------------------------------------------

    def _rbac(self, *, chaos: bool) -> PreflightCheck:
        """One SelfSubjectAccessReview per ``verb resource`` the backend uses (asked concurrently)."""
        wanted = required_access(namespace=self.namespace, chaos=chaos)

        def ask(attrs: Mapping[str, str]) -> bool:
            review = self.api.request(
                "POST",
                _SSAR_PATH,
                what=f"ask whether {attrs['verb']} {attrs['resource']} is allowed",
                body={
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": dict(attrs)},
                },
            )
            return bool((review.get("status") or {}).get("allowed"))

        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="hftk8s-ssar") as pool:
            allowed = list(pool.map(ask, [attrs for _label, attrs in wanted]))
        denied = [label for (label, _attrs), ok in zip(wanted, allowed, strict=True) if not ok]
        return rbac_row(denied, total=len(wanted), context=self.context, namespace=self.namespace)

    def _storage(self) -> PreflightCheck:
        classes = self._list_or_none("/apis/storage.k8s.io/v1/storageclasses", what="list storageclasses")
        return storage_row(classes, context=self.context)

    def _chaos_api(self, nodes: list[Mapping[str, Any]] | None) -> PreflightCheck:
        try:
            listing = self._get("/apis/chaos-mesh.org/v1alpha1", what="discover the Chaos Mesh API")
            served = {str(r.get("name")) for r in listing.get("resources") or []}
        except ApiNotFound:
            served = set()
        return chaos_api_row(served, nodes, context=self.context, provider=self.provider)

    def _chaos_daemon(self, nodes: list[Mapping[str, Any]] | None) -> PreflightCheck:
        daemonsets = self._list_or_none(
            "/apis/apps/v1/daemonsets",
            what="list the chaos-daemon DaemonSets",
            selector=f"{CHAOS_DAEMON_LABEL[0]}={CHAOS_DAEMON_LABEL[1]}",
        )
        return chaos_daemon_row(daemonsets, nodes, context=self.context, provider=self.provider)

    def _ksm(self) -> PreflightCheck:
        deployments = self._list_or_none(
            "/apis/apps/v1/deployments",
            what="list kube-state-metrics Deployments",
            selector="app.kubernetes.io/name=kube-state-metrics",
        )
        return ksm_row(deployments, context=self.context)

    # -- requests --------------------------------------------------------------------------------

    def _get(self, path: str, *, what: str, selector: str | None = None) -> Any:
        query = [("labelSelector", selector)] if selector else []
        return self.api.request("GET", path, what=what, query=query)

    def _list_or_none(
        self, path: str, *, what: str, selector: str | None = None
    ) -> list[Mapping[str, Any]] | None:
        """The items of a list, or None when the credentials may not list them (403)."""
        try:
            return list(self._get(path, what=what, selector=selector).get("items") or [])
        except ClusterError as e:
            if _status(e) in (401, 403):
                return None
            raise

    def _guarded(self, name: str, check: Callable[[], PreflightCheck]) -> PreflightCheck:
        """A check whose request failed becomes its own row; an API gone away blocks."""
        try:
            return check()
        except ClusterUnavailable as e:
            return PreflightCheck(
                check=name,
                ok=False,
                found=f"the API server stopped answering: {_short(e)}",
                action=f"check the control plane: kubectl --context {self.context} get --raw /readyz",
            )
        except ClusterError as e:
            forbidden = _status(e) in (401, 403)
            return PreflightCheck(
                check=name,
                ok=False,
                found=f"could not check: {_short(e)}",
                action="ask for read access to it, or check it by hand" if forbidden else "see the message",
                blocking=False,
            )


def _status(error: BaseException) -> int | None:
    """The HTTP status behind a translated error (:class:`KubeApi` always chains the cause)."""
    return getattr(error.__cause__, "status", None)


def _short(error: BaseException) -> str:
    """What went wrong, briefly: the transport's own reason when there is one (refused, timed out)."""
    cause = error.__cause__
    inner = getattr(cause, "reason", None) or cause
    if inner is not None and _status(error) is None:
        text = re.sub(r"^<[^>]*>: |^\w+\([^)]*\): ", "", str(inner))
    else:
        text = str(error).split(". ")[0]
    return text if len(text) <= 200 else text[:197] + "..."
