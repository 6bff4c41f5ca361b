"""Evaluate checks over one window, and turn blocking misses into :class:`~pytest_hftk8s.errors.SloViolation`.

Semantics (chosen and documented):

- an :class:`~.model.Slo` is one *instant* query at the window's end with the window's length as the
  range (``rate(x[$window])`` -> ``rate(x[12s])``), so it sees exactly the samples inside the window;
  every series it returns must pass;
- an :class:`~.model.Alert` (kube-burner profile entry) is a *range* query over the window that fires
  when it returns any sample; separately, every series the expression needs must exist in the window;
- before querying, it waits (bounded) until Prometheus has scraped past the window's end;
- no data - an empty result, NaN (e.g. 0/0), a missing series, an unreachable server - is a miss.

:class:`Context` carries what checks may read: the Prometheus client, the window, the PromQL
variables, the test's load summaries, and where the platform's database and HTTP API are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_hftk8s.errors import SloViolation
from pytest_hftk8s.results import LoadSummary, SloResult, Window
from pytest_hftk8s.slo.model import Alert, Check, Slo, compare, result
from pytest_hftk8s.slo.prom import PromClient, PromError

if TYPE_CHECKING:
    from pytest_hftk8s.slo.dashboard import PanelLinks
    from pytest_hftk8s.slo.database import DbTarget


@dataclass
class Context:
    """What a check may read when it is evaluated."""

    client: PromClient | None
    window: Window
    variables: Mapping[str, Any] = field(default_factory=dict)
    loads: Sequence[LoadSummary] = ()
    db: DbTarget | None = None
    api_url: str | None = None  # the platform's HTTP entry (nginx)
    settled: bool = True


def evaluate(
    checks: Sequence[Check],
    window: Window,
    client: PromClient | None,
    *,
    variables: Mapping[str, Any] | None = None,
    loads: Sequence[LoadSummary] = (),
    db: DbTarget | None = None,
    api_url: str | None = None,
    settle_timeout_s: float = 3.0,
    lookback_s: float | None = None,
) -> list[SloResult]:
    """Evaluate every check over ``window``; never raises for a miss (see :func:`check`)."""
    if not checks:
        return []
    settled = True
    if client is not None:
        if lookback_s is None:
            lookback_s = 1.5 * client.scrape_interval()
        try:
            settled = client.wait_scraped_past(window.end, timeout_s=settle_timeout_s)
        except PromError:
            settled = False  # each query reports the failure as "no data" with the reason
    ctx = Context(
        client=client,
        window=window.with_lookback(lookback_s or 0.0),
        variables=dict(variables or {}),
        loads=loads,
        db=db,
        api_url=api_url,
        settled=settled,
    )
    return [c.evaluate(ctx) for c in checks]


def instant(slo: Slo, ctx: Context) -> SloResult:
    """One PromQL SLO (see the module docstring)."""
    window = ctx.window
    query = slo.render(window, variables=ctx.variables)
    out = result(
        slo, window=window, observed=None, passed=False, query=query, comparator=slo.comparator,
        threshold=slo.threshold, unit=slo.unit,
    )  # fmt: skip
    unset = _unset_variable(query)
    if unset:
        out.message = f"no data: the query needs ${unset}, which this test did not provide"
        return out
    if ctx.client is None:
        out.message = "no data: no Prometheus is known to this evaluation"
        return out
    try:
        rows = ctx.client.query(query, at=window.end)
    except PromError as e:
        out.message = f"no data: {e}"
        return out
    rows = [(labels, value) for labels, value in rows if not math.isnan(value)]
    if not rows:
        out.message = (
            f"no data: Prometheus returned no samples for this query over the window "
            f"{window.promql_range} ending {window.end:.3f}"
            + ("" if ctx.settled else " (and it had not scraped past the window's end yet)")
            + "; check that the series exist and that the target is scraped"
        )
        return out
    out.observed = rows[0][1] if len(rows) == 1 else {label_text(labels): value for labels, value in rows}
    out.passed = all(compare(value, slo.comparator, slo.threshold) for _, value in rows)
    return out


def alert(entry: Alert, ctx: Context) -> SloResult:
    """One kube-burner alert: fires on any sample of its range query; silence needs its series."""
    from pytest_hftk8s.slo import selectors

    window = ctx.window
    expr = entry.expr.replace("{{.elapsed}}", "$window")
    query = Slo(name=entry.name, expr=expr, comparator="==", threshold=0).render(
        window, variables=ctx.variables
    )
    out = result(
        entry, window=window, observed=None, passed=False, query=query, comparator="fires", threshold="never"
    )
    unset = _unset_variable(query)
    if unset:
        out.message = f"no data: the expression needs ${unset}, which this test did not provide"
        return out
    if ctx.client is None:
        out.message = "no data: no Prometheus is known to this evaluation"
        return out
    try:
        required = selectors.required(query)
        series = ctx.client.query_range(query, start=window.start, end=window.end, step=entry.step)
    except PromError as e:
        out.message = f"no data: {e}"
        return out
    except ValueError as e:  # the expression does not parse: say so, it can never be judged
        out.message = f"no data: {e}"
        return out
    firing = [(labels, points) for labels, points in series if points]
    out.observed = sum(len(points) for _, points in firing)
    out.extra = {"required_series": selectors.describe(required)}
    if firing:
        labels, points = firing[0]
        out.message = (
            f"fired: {len(firing)} series returned samples in the window, first {label_text(labels)} = "
            f"{points[0][1]:.6g} at {points[0][0]:.3f}"
            + (f" ({entry.description})" if entry.description else "")
        )
        return out
    try:  # silence only counts when the series it reads exist
        missing = selectors.missing(required, ctx.client, window=window)
    except PromError as e:
        out.observed, out.message = None, f"no data: {e}"
        return out
    if missing:
        out.observed = None
        out.message = (
            "no data: the alert stayed silent, but the series it reads do not exist in the window: "
            + ", ".join(missing)
            + "; check the exporter and the scrape targets"
            + ("" if ctx.settled else " (Prometheus had not scraped past the window's end yet)")
        )
        return out
    out.passed = True
    return out


def _unset_variable(query: str) -> str:
    return next((k for k in ("offered_rate", "namespace", "pod", "container") if "$" + k in query), "")


def check(results: Sequence[SloResult], *, report_path: str = "", links: PanelLinks | None = None) -> None:
    """Raise :class:`SloViolation` listing every blocking result that did not hold; with ``links``,
    each SLO that has a dashboard panel gets a line pointing at it for its window."""
    failed = [r for r in results if not r.passed and r.blocking]
    if not failed:
        return
    lines = [f"{len(failed)} SLO(s) did not hold:"]
    for r in failed:
        lines.append(
            f"  {r.name}: expected {r.comparator} {r.threshold}{' ' + r.unit if r.unit else ''}, "
            f"observed {fmt(r.observed)}"
        )
        if r.query:
            lines.append(f"    query: {r.query}")
        lines.append(f"    window: {r.window.seconds:.1f}s ending {r.window.end:.3f}")
        if r.message:
            lines.append(f"    {r.message}")
        link = links.line(r) if links is not None else ""
        if link:
            lines.append(f"    {link}")
    if report_path:
        lines.append(f"  report: {report_path}")
    raise SloViolation("\n".join(lines))


def fmt(observed: Any) -> str:
    if observed is None:
        return "no data"
    if isinstance(observed, dict):
        return ", ".join(f"{k}={v:.6g}" for k, v in observed.items())
    if isinstance(observed, float):
        return f"{observed:.6g}"
    return str(observed)


def label_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "{}"
