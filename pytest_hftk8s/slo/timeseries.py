"""The series the report plots: range queries of the catalogue's :data:`~.queries.PLOTS` over a window.

Each query runs once over ``[start, end]`` at a fixed step, with ``$window`` set to a short range
(a few scrape intervals) so that each point is the rate around its moment, not an average since the
test began. Results come back as typed :class:`~pytest_hftk8s.results.Series` on a common grid (a
missing sample is ``nan``), labelled as Prometheus labelled them. Never raises: a query that fails
is left out and named in the returned notes, so a report is still written when Prometheus is slow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_hftk8s.results import Series, Window
from pytest_hftk8s.slo import queries
from pytest_hftk8s.slo.prom import PromClient, PromError

#: Seconds shown before and after a test's window (the lead-in and the recovery tail of a fault).
MARGIN_S = 10.0
#: At most this many points per series: a 10-minute window is drawn at 1 s, longer ones coarser.
MAX_POINTS = 600


def plot_window(window: Window, *, margin_s: float = MARGIN_S) -> Window:
    return Window(window.start - margin_s, window.end + margin_s)


def step_for(window: Window, *, scrape_interval_s: float) -> float:
    """One point per second, or coarser for long windows; never finer than half a scrape interval."""
    return max(1.0, scrape_interval_s / 2, math.ceil(window.seconds / MAX_POINTS))


def plot_series(
    client: PromClient,
    window: Window,
    *,
    namespace: str,
    scrape_interval_s: float,
    plots: Sequence[queries.Query] = queries.PLOTS,
) -> tuple[list[Series], list[str]]:
    """``(series, notes)`` for every query of ``plots`` over ``window`` (already widened by a margin)."""
    step = step_for(window, scrape_interval_s=scrape_interval_s)
    # rate() needs two samples in its range: four scrape intervals keep a point even after a missed scrape.
    rate_range = f"{max(2, round(4 * scrape_interval_s * 1000))}ms"
    grid = math.floor((window.end - window.start) / step) + 1
    out: list[Series] = []
    notes: list[str] = []
    for q in plots:
        expr = q.render(window=rate_range, window_wide=rate_range, namespace=namespace)
        try:
            rows = client.query_range(expr, start=window.start, end=window.end, step=step)
        except PromError as e:
            notes.append(f"{q.name}: {e}")
            continue
        for labels, points in rows:
            values = [math.nan] * grid
            for t, v in points:
                i = round((t - window.start) / step)
                if 0 <= i < grid:
                    values[i] = v
            out.append(
                Series(
                    name=q.name,
                    start=window.start,
                    step=step,
                    values=tuple(values),
                    unit=q.unit,
                    labels=labels,
                )
            )
    return out, notes
