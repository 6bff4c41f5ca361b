"""Before anything is applied: the preflight, the platform images, and the session's own objects.

The session deploys what ``kubectl kustomize`` renders, plus two things that must not live in the
repository or be decided by it: the database password (a Secret generated for each deployment, or
one the user names with ``--hft-db-secret``) and the cluster add-ons a cluster already has (the
overlay's kube-state-metrics is dropped when the preflight finds one running). The preflight runs
first and stops the session, within seconds and with a table that says what to do, when a
prerequisite is missing. No pytest here, and no backend named: the cluster does its own checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pytest_hftk8s.cluster.base import Cluster
from pytest_hftk8s.errors import PreflightFailed
from pytest_hftk8s.report.preflight import failed, format_table
from pytest_hftk8s.results import PreflightCheck

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


#: How long the series check waits for a fresh Prometheus's first scrapes of the two sources.
SERIES_WAIT_S = 20.0


def series_preflight(
    prom_url: str, *, namespace: str, cluster: str, progress: Progress, timeout_s: float = SERIES_WAIT_S
) -> list[PreflightCheck]:
    """After the gates: the Prometheus in use holds kube-state-metrics and cAdvisor series of the
    namespace (without them the restart, OOMKilled and CrashLoopBackOff SLOs have no data)."""
    from pytest_hftk8s.slo.preflight import series_checks
    from pytest_hftk8s.slo.prom import PromClient

    client = PromClient(prom_url, timeout_s=2.0)
    try:
        rows = series_checks(client, namespace=namespace, timeout_s=timeout_s)
    finally:
        client.close()
    if failed(rows):
        table = format_table(rows, title=f"series in {prom_url} (namespace {namespace})")
        progress(table)
        raise PreflightFailed(
            f"expected kube-state-metrics and cAdvisor series of namespace {namespace} in the Prometheus "
            f"in use ({prom_url}) within {timeout_s:g}s of {cluster} being ready; without them the restart, "
            f"OOMKilled and CrashLoopBackOff SLOs cannot be judged:\n{table}"
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
