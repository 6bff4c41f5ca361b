"""Grafana dashboard for the reference HFT platform under test, written with grafanalib.

Generate the JSON with ``python dashboards/generate.py`` (or grafanalib's ``generate-dashboard``).
Every query uses only the series of DESIGN.md's metric contract, so the same dashboard works on the
local cluster and on Kubernetes. This file only declares panels; it performs no I/O.
"""

from __future__ import annotations

from grafanalib.core import (
    Dashboard,
    GridPos,
    RowPanel,
    Target,
    Template,
    Templating,
    Time,
    TimeSeries,
)

DATASOURCE = "${datasource}"
NS = 'namespace="$namespace"'

#: (row title, [(panel title, unit, [(legend, PromQL)])])
ROWS: list[tuple[str, list[tuple[str, str, list[tuple[str, str]]]]]] = [
    (
        "Orders",
        [
            (
                "Orders/s by outcome",
                "reqps",
                [("{{outcome}}", "sum by (outcome) (rate(hft_orders_total[1m]))")],
            ),
            (
                "Order latency",
                "s",
                [
                    (
                        f"p{q}",
                        f"histogram_quantile(0.{q}, sum by (le) (rate(hft_order_latency_seconds_bucket[1m])))",
                    )
                    for q in ("50", "99")
                ],
            ),
            (
                "Registrations/s by outcome",
                "reqps",
                [("{{outcome}}", "sum by (outcome) (rate(hft_registrations_total[1m]))")],
            ),
            ("Fills/s", "ops", [("fills", "sum(rate(hft_fills_total[1m]))")]),
        ],
    ),
    (
        "Database and engine",
        [
            (
                "Commit latency p99",
                "s",
                [("p99", "histogram_quantile(0.99, sum by (le) (rate(hft_db_commit_seconds_bucket[1m])))")],
            ),
            (
                "Orders per commit (group commit batch size)",
                "none",
                [("mean", "sum(rate(hft_db_batch_size_sum[1m])) / sum(rate(hft_db_batch_size_count[1m]))")],
            ),
            ("Engine queue depth", "none", [("{{pod}}", "max by (pod) (hft_engine_queue_depth)")]),
        ],
    ),
    (
        "Pods",
        [
            (
                "CPU (cores)",
                "none",
                [("{{pod}}", f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{NS}}}[1m]))")],
            ),
            (
                "CPU throttled (share of CFS periods)",
                "percentunit",
                [
                    (
                        "{{pod}}",
                        f"sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{{{NS}}}[1m]))"
                        f" / sum by (pod) (rate(container_cpu_cfs_periods_total{{{NS}}}[1m]))",
                    )
                ],
            ),
            (
                "Memory working set",
                "bytes",
                [("{{pod}}", f"sum by (pod) (container_memory_working_set_bytes{{{NS}}})")],
            ),
            (
                "Restarts (5m)",
                "none",
                [
                    (
                        "{{pod}}/{{container}}",
                        f"increase(kube_pod_container_status_restarts_total{{{NS}}}[5m])",
                    )
                ],
            ),
            (
                "Waiting and last-terminated reasons",
                "none",
                [
                    (
                        "waiting {{pod}} {{reason}}",
                        f"kube_pod_container_status_waiting_reason{{{NS}}} > 0",
                    ),
                    (
                        "terminated {{pod}} {{reason}}",
                        f"kube_pod_container_status_last_terminated_reason{{{NS}}} > 0",
                    ),
                ],
            ),
            ("OOM events", "none", [("{{pod}}", f"sum by (pod) (container_oom_events_total{{{NS}}})")]),
            ("Pods ready", "none", [("{{pod}}", f'kube_pod_status_ready{{{NS},condition="true"}}')]),
            (
                "Deployment replicas available",
                "none",
                [("{{deployment}}", f"kube_deployment_status_replicas_available{{{NS}}}")],
            ),
        ],
    ),
]

PANEL_W, PANEL_H = 12, 8


def _panels() -> list[object]:
    panels: list[object] = []
    y = 0
    for row_title, row in ROWS:
        panels.append(RowPanel(title=row_title, gridPos=GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        for i, (title, unit, queries) in enumerate(row):
            panels.append(
                TimeSeries(
                    title=title,
                    dataSource=DATASOURCE,
                    unit=unit,
                    targets=[
                        Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + j), datasource=DATASOURCE)
                        for j, (legend, expr) in enumerate(queries)
                    ],
                    gridPos=GridPos(h=PANEL_H, w=PANEL_W, x=(i % 2) * PANEL_W, y=y + (i // 2) * PANEL_H),
                )
            )
        y += ((len(row) + 1) // 2) * PANEL_H
    return panels


dashboard = Dashboard(
    title="pytest-hftk8s: HFT platform",
    uid="hftk8s-platform",
    tags=["pytest-hftk8s"],
    time=Time("now-30m", "now"),
    refresh="5s",
    templating=Templating(
        list=[
            Template(name="datasource", query="prometheus", type="datasource", label="Data source"),
            Template(
                name="namespace",
                query="label_values(kube_pod_status_ready, namespace)",
                dataSource=DATASOURCE,
                default="hft",
                label="Namespace",
            ),
        ]
    ),
    panels=_panels(),
).auto_panel_ids()
