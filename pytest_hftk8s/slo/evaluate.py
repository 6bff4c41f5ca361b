"""Evaluate SLOs over one window and turn misses into :class:`~pytest_hftk8s.errors.SloViolation`.

Semantics (chosen and documented): each SLO is one *instant* query evaluated at the window's end,
with the window's length substituted as the range (``rate(x[$window])`` -> ``rate(x[12s])``), so it
sees exactly the samples inside the window. Before querying it waits (bounded) until Prometheus has
scraped past the window's end. No data - an empty result or NaN (e.g. 0/0) - is a miss.
Every series the query returns must pass; ``observed`` is the value, or a label->value map.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_hftk8s.errors import SloViolation
from pytest_hftk8s.slo.model import Slo, SloResult, Window, compare
from pytest_hftk8s.slo.prom import PromClient, PromError


def evaluate(
    slos: Sequence[Slo],
    window: Window,
    client: PromClient,
    *,
    variables: Mapping[str, Any] | None = None,
    settle_timeout_s: float = 3.0,
    lookback_s: float | None = None,
) -> list[SloResult]:
    if not slos:
        return []
    if lookback_s is None:
        lookback_s = 1.5 * client.scrape_interval()
    window = Window(window.start, window.end, lookback_s)
    try:
        settled = client.wait_scraped_past(window.end, timeout_s=settle_timeout_s)
    except PromError:
        settled = False  # each query below reports the failure as "no data" with the reason
    return [_one(slo, window, client, variables or {}, settled) for slo in slos]


def _one(
    slo: Slo, window: Window, client: PromClient, variables: Mapping[str, Any], settled: bool
) -> SloResult:
    query = slo.render(window, variables=variables)
    result = SloResult(
        name=slo.name,
        query=query,
        comparator=slo.comparator,
        threshold=_plain(slo.threshold),
        observed=None,
        passed=False,
        window=window.as_dict(),
        severity=slo.severity,
        unit=slo.unit,
    )
    missing = [k for k in ("offered_rate", "namespace") if "$" + k in query]
    if missing:
        result.message = f"no data: the query needs ${missing[0]}, which this test did not provide"
        return result
    try:
        rows = client.query(query, at=window.end)
    except PromError as e:
        result.message = f"no data: {e}"
        return result
    rows = [(labels, value) for labels, value in rows if not math.isnan(value)]
    if not rows:
        result.message = (
            f"no data: Prometheus returned no samples for this query over the window "
            f"{window.promql_range} ending {window.end:.3f}"
            + ("" if settled else " (and it had not scraped past the window's end yet)")
            + "; check that the series exist and that the target is scraped"
        )
        return result
    if len(rows) == 1:
        result.observed = rows[0][1]
    else:
        result.observed = {_label(labels): value for labels, value in rows}
    result.passed = all(compare(value, slo.comparator, slo.threshold) for _, value in rows)
    return result


def check(results: Sequence[SloResult], *, report_path: str = "") -> None:
    """Raise :class:`SloViolation` listing every blocking SLO that did not hold."""
    failed = [r for r in results if not r.passed and r.severity in ("critical", "error")]
    if not failed:
        return
    lines = [f"{len(failed)} SLO(s) did not hold:"]
    for r in failed:
        lines.append(
            f"  {r.name}: expected {r.comparator} {r.threshold}{' ' + r.unit if r.unit else ''}, "
            f"observed {_fmt(r.observed)}"
        )
        lines.append(f"    query: {r.query}")
        lines.append(f"    window: {r.window['seconds']:.1f}s ending {r.window['end']:.3f}")
        if r.message:
            lines.append(f"    {r.message}")
    if report_path:
        lines.append(f"  report: {report_path}")
    raise SloViolation("\n".join(lines))


def _fmt(observed: Any) -> str:
    if observed is None:
        return "no data"
    if isinstance(observed, dict):
        return ", ".join(f"{k}={v:.6g}" for k, v in observed.items())
    return f"{observed:.6g}"


def _label(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "{}"


def _plain(threshold: Any) -> Any:
    return list(threshold) if isinstance(threshold, tuple | list) else threshold
