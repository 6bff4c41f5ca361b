"""PromQL diagnostics for a failure bundle: where the time and the errors went in a test's window.

Not SLOs - nothing here passes or fails. Each query of the catalogue's :data:`~.queries.DIAGNOSTICS`
is evaluated at the window's end and comes back as plain rows, so a failed test's bundle shows
orders and registrations by outcome, latency, restarts, waiting reasons, CPU, throttling and memory
per pod without opening Grafana. Never raises: a query that fails is reported with its error.
"""

from __future__ import annotations

import math
from typing import Any

from pytest_hftk8s.results import Window
from pytest_hftk8s.slo import queries
from pytest_hftk8s.slo.prom import PromClient, PromError


def snapshot(client: PromClient, window: Window, *, namespace: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    values = {"window": window.promql_range, "window_wide": window.promql_range_wide, "namespace": namespace}
    for q in queries.DIAGNOSTICS:
        query = q.render(**values)
        try:
            rows = client.query(query, at=window.end)
            out.append(
                {"name": q.name, "query": query, "rows": [{"labels": lb, "value": v} for lb, v in rows]}
            )
        except PromError as e:
            out.append({"name": q.name, "query": query, "error": str(e)})
    return out


def rates(client: PromClient, window: Window) -> dict[str, float]:
    """Accepted orders/s and fills/s over ``window`` (``summary.json`` shows them side by side)."""
    out: dict[str, float] = {}
    for key, q in (("orders_per_s", queries.ACCEPTED_RATE), ("fills_per_s", queries.FILLS_RATE)):
        try:
            value = client.scalar(q.render(window=window.promql_range), at=window.end)
        except PromError:
            continue
        if value is not None and not math.isnan(value):
            out[key] = value
    return out
