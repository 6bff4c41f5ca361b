"""PromQL diagnostics for a failure bundle: where the time and the errors went in a test's window.

Not SLOs - nothing here passes or fails. Each query is evaluated at the window's end like an SLO
and comes back as plain rows, so a failed test's bundle shows orders and registrations by outcome,
latency, restarts, waiting reasons, CPU, throttling and memory per pod without opening Grafana.
Never raises: a query that fails is reported with its error.
"""

from __future__ import annotations

from typing import Any

from pytest_hftk8s.slo.model import Slo, Window
from pytest_hftk8s.slo.prom import PromClient, PromError

QUERIES = {
    "orders_by_outcome": "sum by (outcome) (increase(hft_orders_total[$window]))",
    "registrations_by_outcome": "sum by (outcome) (increase(hft_registrations_total[$window_wide]))",
    "order_latency_p50_ms": (
        "1000 * histogram_quantile(0.5, sum by (le) (rate(hft_order_latency_seconds_bucket[$window])))"
    ),
    "order_latency_p99_ms": (
        "1000 * histogram_quantile(0.99, sum by (le) (rate(hft_order_latency_seconds_bucket[$window])))"
    ),
    "engine_queue_depth_max": "max(max_over_time(hft_engine_queue_depth[$window]))",
    "restarts": 'sum by (pod, container) (increase(kube_pod_container_status_restarts_total{namespace="$namespace"}'
    "[$window_wide]))",
    "waiting_reasons": 'max by (pod, container, reason) (max_over_time(kube_pod_container_status_waiting_reason{namespace="$namespace"}'
    "[$window_wide]))",
    "cpu_cores_by_pod": 'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="$namespace"}[$window]))',
    "cpu_throttled_periods_by_pod": (
        'sum by (pod) (increase(container_cpu_cfs_throttled_periods_total{namespace="$namespace"}[$window]))'
    ),
    "memory_working_set_max_bytes": (
        'max by (pod) (max_over_time(container_memory_working_set_bytes{namespace="$namespace"}[$window]))'
    ),
}


def snapshot(client: PromClient, window: Window, *, namespace: str) -> list[dict[str, Any]]:
    out = []
    for name, expr in QUERIES.items():
        query = Slo(name=name, expr=expr, comparator=">=", threshold=0).render(
            window, variables={"namespace": namespace}
        )
        try:
            rows = client.query(query, at=window.end)
            out.append({"name": name, "query": query, "rows": [{"labels": lb, "value": v} for lb, v in rows]})
        except PromError as e:
            out.append({"name": name, "query": query, "error": str(e)})
    return out
