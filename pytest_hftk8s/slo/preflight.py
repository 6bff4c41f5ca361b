"""The Prometheus side of the preflight: does the Prometheus in use hold the namespace's cluster series?

The restart, OOMKilled and CrashLoopBackOff SLOs read kube-state-metrics (``kube_pod_status_ready``
and its siblings); stress intensity and the pod panels read cAdvisor
(``container_cpu_usage_seconds_total``). Without them those checks have no data and fail late, so
this asks once the platform's pods run - waiting a bounded while for the first scrapes - and returns
:class:`~pytest_hftk8s.results.PreflightCheck` rows that say which series are missing, whether they
exist for other namespaces, and what to do. Queries come from the catalogue; nothing is changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pytest_hftk8s.results import PreflightCheck
from pytest_hftk8s.slo import queries
from pytest_hftk8s.slo.prom import PromClient, PromError

KSM_SERIES_CHECK = "kube-state-metrics series"
CADVISOR_SERIES_CHECK = "cAdvisor series"


@dataclass(frozen=True)
class _Source:
    check: str
    metric: str
    present: queries.Query
    by_namespace: queries.Query
    missing: str  # what to do when the metric is absent altogether


_SOURCES = (
    _Source(
        KSM_SERIES_CHECK,
        "kube_pod_status_ready",
        queries.KSM_SERIES,
        queries.KSM_NAMESPACES,
        "deploy kube-state-metrics (the overlay's add-on does, unless the preflight found one) or add a "
        "scrape job for the cluster's own; see which targets are up at {url}/targets",
    ),
    _Source(
        CADVISOR_SERIES_CHECK,
        "container_cpu_usage_seconds_total",
        queries.CADVISOR_SERIES,
        queries.CADVISOR_NAMESPACES,
        "scrape the kubelets' cAdvisor through the API server's node proxy "
        "(/api/v1/nodes/<node>/proxy/metrics/cadvisor; the Prometheus ServiceAccount needs get on "
        "nodes/proxy); see which targets are up at {url}/targets",
    ),
)


def series_checks(
    prom: PromClient,
    *,
    namespace: str,
    timeout_s: float = 0.0,
    poll_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PreflightCheck]:
    """One row per series source; waits up to ``timeout_s`` for series that are not there yet."""
    deadline = time.monotonic() + timeout_s
    pending = list(_SOURCES)
    done: dict[str, PreflightCheck] = {}
    while True:
        try:
            for source in list(pending):
                count = prom.scalar(source.present.render(namespace=namespace))
                if count:
                    done[source.check] = PreflightCheck(
                        source.check, True, f"{count:.0f} {source.metric} series in {namespace}"
                    )
                    pending.remove(source)
            if not pending or time.monotonic() >= deadline:
                for source in pending:
                    done[source.check] = _missing(prom, source, namespace=namespace, waited=timeout_s)
                return [done[s.check] for s in _SOURCES]
        except PromError as e:
            return [
                PreflightCheck(
                    "Prometheus",
                    False,
                    f"{e}",
                    f"check that Prometheus answers at {prom.url} (--hft-prometheus-url, or the prometheus Service)",
                )
            ]
        sleep(poll_s)


def _missing(prom: PromClient, source: _Source, *, namespace: str, waited: float) -> PreflightCheck:
    others = sorted(labels.get("namespace", "") for labels, _ in prom.query(source.by_namespace.expr))
    after = f" after {waited:g}s" if waited else ""
    if not others:
        return PreflightCheck(
            source.check,
            False,
            f"Prometheus at {prom.url} has no {source.metric} series at all{after}",
            source.missing.format(url=prom.url),
        )
    shown = ", ".join(n or "(no namespace label)" for n in others[:8]) + (" ..." if len(others) > 8 else "")
    return PreflightCheck(
        source.check,
        False,
        f"no {source.metric} series for namespace {namespace}{after}; there are some for: {shown}",
        f"check that the platform's pods run in {namespace}, and that the exporter is not limited to other "
        f"namespaces (kube-state-metrics --namespaces) or relabels the namespace label",
    )
