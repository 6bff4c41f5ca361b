"""Removing what earlier runs left in a namespace: chaos objects and volume claims the plugin labelled.

A killed run (SIGKILL, a lost CI runner, ``--hft-delete=never``) can leave Chaos Mesh experiments
still injecting, and PersistentVolumeClaims that outlive their StatefulSet (the claims' retention
policy is ``Retain``). Both carry ``app.kubernetes.io/managed-by=pytest-hftk8s`` and
``hftk8s.io/run-id``; this module deletes, in one namespace, those whose run id is not the one to
keep. Chaos objects go through :meth:`KubernetesChaos.sweep`; a claim still mounted by a pod is not a
leftover and stays. Every wait is bounded: what is still there after it is reported with the command
that releases it, never waited on forever.

It touches nothing outside the namespace and nothing without the plugin's labels.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from pytest_hftk8s.cluster.kubernetes.api import ApiNotFound, KubeApi
from pytest_hftk8s.cluster.kubernetes.chaos_driver import KubernetesChaos
from pytest_hftk8s.cluster.kubernetes.ownership import MANAGED_BY, NAMESPACE_LABEL, RUN_ID_LABEL, owned_by

__all__ = ["sweep_claims", "sweep_namespace"]


def _claims_in_use(api: KubeApi, namespace: str) -> dict[str, str]:
    """``{claim: pod}`` for every claim a pod of the namespace mounts (terminating pods included:
    the claim's ``kubernetes.io/pvc-protection`` finalizer holds it until they are gone)."""
    pods = api.request("GET", f"/api/v1/namespaces/{namespace}/pods", what=f"list pods in {namespace}")
    in_use: dict[str, str] = {}
    for pod in pods.get("items") or []:
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                in_use[str(claim)] = str((pod.get("metadata") or {}).get("name"))
    return in_use


def sweep_claims(api: KubeApi, *, namespace: str, keep_run_id: str | None, timeout: float) -> list[str]:
    """Delete the plugin's claims in ``namespace`` not of run ``keep_run_id`` and mounted by no pod."""
    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    selector = f"{MANAGED_BY[0]}={MANAGED_BY[1]},{NAMESPACE_LABEL}={namespace}"
    listing = api.request(
        "GET", path, what=f"list volume claims in {namespace}", query=[("labelSelector", selector)]
    )
    in_use: dict[str, str] | None = None
    deleted: list[str] = []
    for claim in listing.get("items") or []:
        meta = claim.get("metadata") or {}
        name = str(meta.get("name"))
        if not owned_by(claim, namespace):
            continue  # never delete what is not ours, even if a server ignores the selector
        if keep_run_id is not None and (meta.get("labels") or {}).get(RUN_ID_LABEL) == keep_run_id:
            continue
        if in_use is None:
            in_use = _claims_in_use(api, namespace)
        if name in in_use:
            continue  # mounted: part of a running platform, not a leftover
        with contextlib.suppress(ApiNotFound):
            api.request("DELETE", f"{path}/{name}", what=f"delete PersistentVolumeClaim/{name}")
        deleted.append(name)
    stuck = _wait_gone(lambda name: _read(api, f"{path}/{name}", name), deleted, timeout=timeout)
    return [
        f"PersistentVolumeClaim/{name}"
        if name not in stuck
        else f"PersistentVolumeClaim/{name} STILL PRESENT after {timeout:g}s (finalizers {stuck[name]}); "
        f"see `kubectl -n {namespace} describe pvc {name}`: a pod of another owner may still mount it"
        for name in deleted
    ]


def _read(api: KubeApi, path: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(api.request("GET", path, what=f"read {name}"))
    except ApiNotFound:
        return None


def _wait_gone(
    read: Callable[[str], dict[str, Any] | None], names: list[str], *, timeout: float
) -> dict[str, list[str]]:
    """Wait (bounded) until each of ``names`` reads as gone; ``{name: finalizers}`` of those left."""
    deadline = time.monotonic() + timeout
    left = {name: [] for name in names}  # type: dict[str, list[str]]
    while left:
        for name in list(left):
            obj = read(name)
            if obj is None:
                del left[name]
            else:
                left[name] = list((obj.get("metadata") or {}).get("finalizers") or [])
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return left


def sweep_namespace(
    api: KubeApi, *, namespace: str, keep_run_id: str | None, finalizer_timeout: float
) -> list[str]:
    """Chaos objects first (a leftover StressChaos may still be stressing a pod), then volume claims."""
    chaos = KubernetesChaos(api, namespace=namespace, run_id=keep_run_id or "sweep")
    removed = chaos.sweep(keep_run_id=keep_run_id, finalizer_timeout=finalizer_timeout)
    return removed + sweep_claims(
        api, namespace=namespace, keep_run_id=keep_run_id, timeout=finalizer_timeout
    )
