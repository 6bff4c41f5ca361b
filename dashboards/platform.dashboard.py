"""Grafana dashboard for the reference HFT platform under test, written with grafanalib.

Generate the JSON with ``python dashboards/generate.py``. Every query comes from the plugin's one
PromQL catalogue (``pytest_hftk8s.slo.queries``), which reads only the metric contract, so the same
dashboard works on the local cluster and on Kubernetes and shows exactly what the SLOs judge:

- the SLOs, one panel each (``pytest_hftk8s.slo.dashboard.SLO_PANELS``: stable ids, which the SLO
  failure links open, and the built-in's bound drawn as a threshold line);
- the platform overview, per-pod resources against their limits, and scaling (``DASHBOARD_ROWS``);
- every chaos experiment's window as an annotation, from ``hftk8s_chaos_injected`` of the
  dashboard's own data source and namespace variables. Chaos Mesh's Grafana data source draws its
  events on every data source (chaos-mesh/chaos-mesh#1482); this query only sees the Prometheus and
  the namespace the dashboard shows.

This file only declares panels; it performs no I/O.
"""

from __future__ import annotations

from grafanalib.core import (
    Annotations,
    Dashboard,
    GridPos,
    RowPanel,
    Target,
    Template,
    Templating,
    Time,
    TimeSeries,
)

from pytest_hftk8s.slo.dashboard import (
    DASHBOARD_TITLE,
    DASHBOARD_UID,
    GRAFANA_RANGE,
    OFFERED_RATE_UNSET,
    OFFERED_RATE_VARIABLE,
    SLO_PANELS,
)
from pytest_hftk8s.slo.queries import CHAOS_INJECTED, DASHBOARD_ROWS, Query

DATASOURCE = "${datasource}"
PANEL_W, PANEL_H = 12, 8


def _expr(query: Query) -> str:
    return query.render(window=GRAFANA_RANGE, window_wide=GRAFANA_RANGE)


def _grid(i: int, y: int) -> GridPos:
    return GridPos(h=PANEL_H, w=PANEL_W, x=(i % 2) * PANEL_W, y=y + (i // 2) * PANEL_H)


def _rows_height(n: int) -> int:
    return ((n + 1) // 2) * PANEL_H


def _slo_row(y: int) -> tuple[list[object], int]:
    panels: list[object] = [
        RowPanel(title="SLOs (line: the built-in bound)", gridPos=GridPos(h=1, w=24, x=0, y=y))
    ]
    y += 1
    for i, p in enumerate(SLO_PANELS):
        panels.append(
            TimeSeries(
                id=p.panel_id,
                title=p.title,
                description=f"SLO {p.name}: {p.slo.description} ({p.slo.comparator} {p.threshold:g})",
                dataSource=DATASOURCE,
                unit=p.unit,
                targets=[Target(expr=p.expr, legendFormat=p.name, refId="A", datasource=DATASOURCE)],
                thresholds=p.threshold_steps(),
                thresholdsStyleMode="line",
                gridPos=_grid(i, y),
            )
        )
    return panels, y + _rows_height(len(SLO_PANELS))


def _catalogue_rows(y: int) -> list[object]:
    panels: list[object] = []
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
                    gridPos=_grid(i, y),
                )
            )
        y += _rows_height(len(row))
    return panels


def _panels() -> list[object]:
    slo_panels, y = _slo_row(0)
    return slo_panels + _catalogue_rows(y)


#: Each experiment's window as a region: Grafana joins the samples of one series into a region.
CHAOS_ANNOTATION = {
    "name": "Chaos experiments",
    "datasource": DATASOURCE,
    "enable": True,
    "hide": False,
    "iconColor": "rgba(255, 96, 96, 1)",
    "expr": _expr(CHAOS_INJECTED),
    "step": "1s",
    "titleFormat": "{{kind}} {{name}}",
    "textFormat": "chaos experiment {{name}} ({{kind}}) injected in {{namespace}}",
    "tagKeys": "kind,name",
    "useValueForTime": False,
}

dashboard = Dashboard(
    title=DASHBOARD_TITLE,
    uid=DASHBOARD_UID,
    tags=["pytest-hftk8s"],
    time=Time("now-30m", "now"),
    refresh="5s",
    annotations=Annotations(list=[CHAOS_ANNOTATION]),
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
            Template(
                name=OFFERED_RATE_VARIABLE,
                query=OFFERED_RATE_UNSET,
                default=OFFERED_RATE_UNSET,
                type="textbox",
                label="Offered orders/s (throughput ratio; an SLO link sets it)",
            ),
        ]
    ),
    panels=_panels(),
).auto_panel_ids()
