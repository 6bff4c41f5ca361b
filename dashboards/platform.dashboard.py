"""Grafana dashboard for the reference HFT platform under test, written with grafanalib.

Generate the JSON with ``python dashboards/generate.py`` (or grafanalib's ``generate-dashboard``).
Every query comes from the plugin's one PromQL catalogue (``pytest_hftk8s.slo.queries``), which reads
only DESIGN.md's metric contract, so the same dashboard works on the local cluster and on
Kubernetes and shows exactly what the SLOs judge. This file only declares panels; it performs no I/O.
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

from pytest_hftk8s.slo.queries import DASHBOARD_ROWS, Query

DATASOURCE = "${datasource}"
#: Grafana fills the range of every rate() itself; $namespace stays the dashboard's own variable.
RANGE = "$__rate_interval"


def _expr(query: Query) -> str:
    return query.render(window=RANGE, window_wide=RANGE)


PANEL_W, PANEL_H = 12, 8


def _panels() -> list[object]:
    panels: list[object] = []
    y = 0
    for row_title, row in DASHBOARD_ROWS:
        panels.append(RowPanel(title=row_title, gridPos=GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        for i, (title, unit, queries) in enumerate(row):
            panels.append(
                TimeSeries(
                    title=title,
                    dataSource=DATASOURCE,
                    unit=unit,
                    targets=[
                        Target(
                            expr=_expr(q), legendFormat=legend, refId=chr(ord("A") + j), datasource=DATASOURCE
                        )
                        for j, (legend, q) in enumerate(queries)
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
