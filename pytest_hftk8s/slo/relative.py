"""Baseline-relative SLOs: a threshold written as a ratio of the same session's baseline window.

``relative(accepted_rate(), ratio=0.9)`` means "accepted orders/s >= 90% of what the baseline window
measured with the same query". The session's :class:`~pytest_hftk8s.results.Baseline` is recorded
once, from the first valid open-loop run named ``baseline`` (:func:`baseline_from`); each
expression's baseline value is queried once and cached on it; :func:`resolve` turns a
:class:`Relative` into a plain :class:`~.model.Slo` with an absolute threshold. Pure data plus one
bounded query per expression; it never asserts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_hftk8s.errors import ConfigError, HftError
from pytest_hftk8s.results import Baseline, LoadSummary
from pytest_hftk8s.slo import queries
from pytest_hftk8s.slo.model import Slo
from pytest_hftk8s.slo.prom import PromClient, PromError

#: The load run name that records the session's baseline.
BASELINE_RUN = "baseline"


@dataclass(frozen=True)
class Relative:
    """``slo`` with its threshold replaced by ``ratio`` x the expression's baseline value."""

    slo: Slo
    ratio: float

    def __post_init__(self) -> None:
        if not (isinstance(self.ratio, int | float) and math.isfinite(self.ratio) and self.ratio > 0):
            raise ConfigError(f"relative SLO {self.slo.name!r}: expected a ratio > 0, got {self.ratio!r}")
        if self.slo.comparator not in (">=", "<=", ">", "<"):
            raise ConfigError(
                f"relative SLO {self.slo.name!r}: expected a >=, <=, > or < comparator, got {self.slo.comparator!r}"
            )

    @property
    def name(self) -> str:
        return f"{self.slo.name}_vs_baseline"

    @property
    def severity(self) -> str:
        return self.slo.severity


def relative(slo: Slo, *, ratio: float) -> Relative:
    """``slo``'s comparator against ``ratio`` x its own value over the session's baseline window."""
    return Relative(slo, ratio)


def accepted_rate() -> Slo:
    """Accepted orders/s over the window, absolute (use it through :func:`relative`)."""
    q = queries.ACCEPTED_RATE
    return Slo(name=q.name, expr=q.expr, comparator=">=", threshold=0, description=q.description, unit=q.unit)


def baseline_from(summaries: Sequence[LoadSummary], *, source: str) -> Baseline | None:
    """The first valid open-loop run named ``baseline`` with accepted orders, as the session baseline."""
    for s in summaries:
        if s.name == BASELINE_RUN and s.valid and s.mode == "open" and s.ok > 0:
            return Baseline(
                window=s.order_window,
                achieved_rate=s.achieved_rate,
                offered_rate=s.offered_rate,
                source=f"{source} (load run {s.name!r})",
            )
    return None


def value_of(baseline: Baseline, slo: Slo, client: PromClient, *, variables: Mapping[str, Any]) -> float:
    """``slo.expr`` over the baseline window (cached on ``baseline``); :class:`HftError` on no data."""
    query = slo.render(baseline.window, variables=variables)
    if query in baseline.values:
        return baseline.values[query]
    try:
        value = client.scalar(query, at=baseline.window.end)
    except PromError as e:
        raise HftError(f"baseline of {slo.name!r}: Prometheus could not answer {query!r}: {e}") from e
    if value is None or math.isnan(value):
        raise HftError(
            f"baseline of {slo.name!r}: expected a value for {query!r} over the baseline window "
            f"({baseline.window.seconds:.1f}s ending {baseline.window.end:.3f}), got no data; the baseline "
            "window must carry the same series (was the baseline load run against this platform?)"
        )
    baseline.values[query] = value
    return value


def resolve(rel: Relative, baseline_value: float) -> Slo:
    """A plain SLO whose threshold is ``ratio`` x ``baseline_value``."""
    return dataclasses.replace(
        rel.slo,
        name=rel.name,
        threshold=rel.ratio * baseline_value,
        description=f"{rel.slo.description or rel.slo.name} {rel.slo.comparator} {rel.ratio:.0%} of the "
        f"baseline ({baseline_value:.6g})",
    )
