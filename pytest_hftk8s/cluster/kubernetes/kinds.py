"""Where each kind of object lives in the REST API: ``(apiVersion, kind) -> path``.

Declares the kinds the platform's manifests and Chaos Mesh use as class-level data (the kr8s way:
``plural`` and ``namespaced`` per kind) and falls back to API discovery for anything else. Knows no
object contents and performs I/O only through the discovery callable it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_hftk8s.errors import ClusterError

__all__ = ["KNOWN_KINDS", "TEARDOWN_ORDER", "Kind", "KindTable"]


@dataclass(frozen=True)
class Kind:
    """A resource type: ``group``/``version`` (``""`` group is the core API), plural, scope."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            if not namespace:
                raise ClusterError(f"{self.kind} is namespaced but no namespace was given")
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


def _k(api_version: str, kind: str, plural: str, *, namespaced: bool = True) -> Kind:
    group, _, version = api_version.rpartition("/")
    return Kind(group=group, version=version, kind=kind, plural=plural, namespaced=namespaced)


KNOWN_KINDS: tuple[Kind, ...] = (
    _k("v1", "Namespace", "namespaces", namespaced=False),
    _k("v1", "Node", "nodes", namespaced=False),
    _k("v1", "ConfigMap", "configmaps"),
    _k("v1", "Secret", "secrets"),
    _k("v1", "Service", "services"),
    _k("v1", "ServiceAccount", "serviceaccounts"),
    _k("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    _k("v1", "Pod", "pods"),
    _k("v1", "Event", "events"),
    _k("apps/v1", "Deployment", "deployments"),
    _k("apps/v1", "StatefulSet", "statefulsets"),
    _k("apps/v1", "DaemonSet", "daemonsets"),
    _k("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    _k("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    _k("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
    _k("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _k("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _k("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False),
    _k("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _k("chaos-mesh.org/v1alpha1", "StressChaos", "stresschaos"),
    _k("chaos-mesh.org/v1alpha1", "PodChaos", "podchaos"),
    _k("chaos-mesh.org/v1alpha1", "NetworkChaos", "networkchaos"),
    _k("chaos-mesh.org/v1alpha1", "Schedule", "schedules"),
)

#: The kinds ``delete_all`` looks for, in deletion order: workloads before what they mount or use.
TEARDOWN_ORDER: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
)

#: Fetches an ``APIResourceList`` for a group version path such as ``/apis/example.com/v1``.
Discover = Callable[[str], Mapping[str, Any]]


class KindTable:
    """Resolves ``(apiVersion, kind)``; unknown kinds are looked up once through discovery."""

    def __init__(self, *, discover: Discover) -> None:
        self._discover = discover
        self._kinds: dict[tuple[str, str], Kind] = {(k.api_version, k.kind): k for k in KNOWN_KINDS}

    def resolve(self, api_version: str, kind: str) -> Kind:
        found = self._kinds.get((api_version, kind))
        if found is not None:
            return found
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        listing = self._discover(path)
        for res in listing.get("resources") or []:
            if res.get("kind") == kind and "/" not in str(res.get("name", "")):
                found = Kind(
                    group=group,
                    version=version,
                    kind=kind,
                    plural=str(res["name"]),
                    namespaced=bool(res.get("namespaced")),
                )
                self._kinds[(api_version, kind)] = found
                return found
        raise ClusterError(
            f"the API server does not serve kind {kind!r} in {api_version!r} (discovery of {path} "
            f"lists no such kind). Install its CRD or fix the manifest's apiVersion/kind."
        )
