"""Before anything is applied: the preflight, the platform images, and the session's own objects.

The session deploys what ``kubectl kustomize`` renders, plus two things that must not live in the
repository or be decided by it: the database password (a Secret generated for each deployment, or
one the user names with ``--hft-db-secret``) and the cluster add-ons a cluster already has (the
overlay's kube-state-metrics is dropped when the preflight finds one running). The preflight runs
first and stops the session, within seconds and with a table that says what to do, when a
prerequisite is missing. No pytest here, and no backend named: the cluster does its own checks.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pytest_hftk8s.cluster.base import Cluster
from pytest_hftk8s.errors import ConfigError, PreflightFailed
from pytest_hftk8s.report.preflight import failed, format_table
from pytest_hftk8s.results import PreflightCheck

#: The Secret every database client of the manifests reads (``secretKeyRef: {name: hft-db, key: password}``).
DB_SECRET = "hft-db"
DB_SECRET_KEY = "password"
#: Rendered add-ons carry this label; an add-on the cluster already runs is not deployed again.
ADDON_LABEL = "hftk8s.io/addon"
#: The preflight row that says whether a kube-state-metrics already runs (ok = one was found).
KSM_CHECK = "kube-state-metrics"

Progress = Callable[[str], None]


def run_preflight(
    cluster: Cluster, *, images: Iterable[str], chaos: bool, progress: Progress
) -> list[PreflightCheck]:
    """The cluster's own checks, printed as one table; raises :class:`PreflightFailed` on a missing
    prerequisite (the table is the message), before anything is deployed."""
    rows = cluster.preflight(images=tuple(images), chaos=chaos)
    table = format_table(rows, title=f"preflight of {cluster.name} (namespace {cluster.namespace})")
    progress(table)
    if failed(rows):
        raise PreflightFailed(
            f"expected every prerequisite of {cluster.name} to be in place; {len(failed(rows))} is "
            f"not, so nothing was deployed. Do what the table says, then run again (check alone "
            f"with --hft-preflight):\n{table}"
        )
    return rows


def present_addons(rows: Sequence[PreflightCheck]) -> set[str]:
    """Add-ons the preflight found already running in the cluster (their overlay copy is skipped)."""
    return {r.check for r in rows if r.check == KSM_CHECK and r.ok}


def without_addons(objects: Sequence[Mapping[str, Any]], present: set[str]) -> list[dict[str, Any]]:
    """The rendered objects minus the add-ons named in ``present`` (by their ``hftk8s.io/addon`` label)."""
    kept = []
    for obj in objects:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if labels.get(ADDON_LABEL) not in present:
            kept.append(dict(obj))
    return kept


def new_password() -> str:
    """A fresh database password for one deployment (URL-safe, 32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


def with_db_secret(
    objects: Sequence[Mapping[str, Any]], *, password: str | None, secret_name: str | None
) -> list[dict[str, Any]]:
    """The objects with the database Secret in place.

    With ``secret_name`` (``--hft-db-secret``) every ``secretKeyRef`` to ``hft-db`` points at the
    user's Secret instead and none is added; otherwise a Secret ``hft-db`` holding ``password`` is
    added - unless the overlay renders one itself, which then wins.
    """
    out = [dict(o) for o in objects]
    if secret_name is not None:
        return [_renamed_secret_refs(o, secret_name) for o in out]
    if any(o.get("kind") == "Secret" and (o.get("metadata") or {}).get("name") == DB_SECRET for o in out):
        return out
    if not password:
        raise ConfigError("expected a database password for the generated Secret hft-db; got none")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": DB_SECRET, "labels": {"app.kubernetes.io/part-of": "hftk8s"}},
        "type": "Opaque",
        "stringData": {DB_SECRET_KEY: password},
    }
    first_non_namespace = next((i for i, o in enumerate(out) if o.get("kind") != "Namespace"), len(out))
    out.insert(first_non_namespace, secret)
    return out


def _renamed_secret_refs(obj: dict[str, Any], name: str) -> dict[str, Any]:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("secretKeyRef")
            if isinstance(ref, dict) and ref.get("name") == DB_SECRET:
                node["secretKeyRef"] = {**ref, "name": name}
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        return node

    return walk(copy.deepcopy(obj))
