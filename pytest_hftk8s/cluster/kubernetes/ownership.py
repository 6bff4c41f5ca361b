"""What the plugin writes on the objects it applies, so that it can find, and only find, its own.

Purely data-manipulative (dicts in, dicts out; no I/O, no ``kubernetes`` import):

* every object carries ``app.kubernetes.io/managed-by=pytest-hftk8s`` and ``hftk8s.io/namespace``;
* a StatefulSet's ``volumeClaimTemplates`` carry them too, plus ``hftk8s.io/run-id``: the claims the
  StatefulSet controller creates from them outlive the StatefulSet (their retention policy is
  ``Retain``), and the sweep finds them by these labels;
* cluster-scoped objects (ClusterRole, ClusterRoleBinding, ...) get the session namespace appended to
  their name, and so does a binding's ``roleRef`` to such a role: two sessions in two namespaces of
  one cluster then never share, overwrite or delete each other's RBAC.

It decides nothing about when to apply or delete; :mod:`.cluster` does.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = [
    "CREATED_LABEL",
    "MANAGED_BY",
    "NAMESPACE_LABEL",
    "RUN_ID_LABEL",
    "cluster_scoped_name",
    "force_finalizers_command",
    "label_claim_templates",
    "owned_by",
    "ownership_labels",
    "rename_role_ref",
]

#: The label every object the plugin creates carries; ``delete_all`` and the sweeps select on it.
MANAGED_BY = ("app.kubernetes.io/managed-by", "pytest-hftk8s")
#: Which session namespace an object belongs to (cluster-scoped RBAC objects need it to be told apart).
NAMESPACE_LABEL = "hftk8s.io/namespace"
#: Which run made a chaos object or a volume claim (the sweep keeps the current run's).
RUN_ID_LABEL = "hftk8s.io/run-id"
#: On a Namespace: the plugin created it, so the plugin may delete it.
CREATED_LABEL = "hftk8s.io/created"


def ownership_labels(namespace: str) -> dict[str, str]:
    return {MANAGED_BY[0]: MANAGED_BY[1], NAMESPACE_LABEL: namespace}


def owned_by(obj: Mapping[str, Any], namespace: str) -> bool:
    """Whether ``obj`` carries this session's ownership labels (checked again after the server's filter)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in ownership_labels(namespace).items())


def cluster_scoped_name(name: str, namespace: str) -> str:
    """``hft-prometheus`` -> ``hft-prometheus-<namespace>`` (idempotent)."""
    suffix = f"-{namespace}"
    return name if name.endswith(suffix) else name + suffix


def rename_role_ref(body: dict[str, Any], *, renamed: Collection[str], namespace: str) -> dict[str, Any]:
    """A (Cluster)RoleBinding whose ``roleRef`` names one of the ``renamed`` ClusterRoles of this
    apply points at its namespaced name; a reference to any other ClusterRole (``view``, ``edit``)
    is left alone."""
    ref = body.get("roleRef") or {}
    if ref.get("kind") == "ClusterRole" and ref.get("name") in renamed:
        body = {**body, "roleRef": {**ref, "name": cluster_scoped_name(str(ref["name"]), namespace)}}
    return body


def label_claim_templates(
    body: dict[str, Any], *, labels: Mapping[str, str], existing: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A StatefulSet whose claim templates carry ``labels`` (ownership and run id).

    ``volumeClaimTemplates`` of an existing StatefulSet cannot change (the API server answers 422:
    "updates to statefulset spec for fields other than ... are forbidden"), so when ``existing``
    (the StatefulSet as the server has it) has a template of the same name, that template's run id is
    kept: the claims it made belong to the run that created them.
    """
    spec = body.get("spec") or {}
    templates = spec.get("volumeClaimTemplates")
    if not templates:
        return body
    before = {
        str((t.get("metadata") or {}).get("name")): (t.get("metadata") or {}).get("labels") or {}
        for t in ((existing or {}).get("spec") or {}).get("volumeClaimTemplates") or []
    }
    labelled = []
    for template in templates:
        meta = dict(template.get("metadata") or {})
        mine = dict(labels)
        kept = before.get(str(meta.get("name")))
        if kept is not None and RUN_ID_LABEL in kept:
            mine[RUN_ID_LABEL] = kept[RUN_ID_LABEL]
        meta["labels"] = {**(meta.get("labels") or {}), **mine}
        labelled.append({**template, "metadata": meta})
    return {**body, "spec": {**spec, "volumeClaimTemplates": labelled}}


def force_finalizers_command(*, namespace: str | None, resource: str, name: str) -> str:
    """The command that releases an object stuck on its finalizers (the user decides to run it)."""
    patch = """'{"metadata":{"finalizers":[]}}'"""
    where = f"-n {namespace} " if namespace else ""
    return f"kubectl {where}patch {resource} {name} --type=merge -p {patch}"
