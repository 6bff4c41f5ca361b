"""Baseline-relative SLOs: a threshold written as a ratio of the same session's baseline window.

``relative(accepted_rate(), ratio=0.9)`` means "accepted orders/s >= 90% of what the baseline window
measured with the same query". :class:`Baseline` holds that window (recorded once per session) and
caches each expression's baseline value; :func:`resolve` turns a :class:`Relative` into a plain
:class:`~pytest_hftk8s.slo.model.Slo` with an absolute threshold. Pure data plus one bounded query per
expression; it never asserts (the evaluator and the checker do).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_hftk8s.errors import ConfigError, HftError
from pytest_hftk8s.slo.model import Slo, Window
from pytest_hftk8s.slo.prom import PromClient, PromError


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


def relative(slo: Slo, *, ratio: float) -> Relative:
    """``slo``'s comparator against ``ratio`` x its own value over the session's baseline window."""
    return Relative(slo, ratio)


def accepted_rate() -> Slo:
    """Accepted orders/s over the window, absolute (use it through :func:`relative`)."""
    return Slo(
        name="accepted_rate",
        expr='sum(rate(hft_orders_total{outcome="accepted"}[$window]))',
        comparator=">=",
        threshold=0,
        description="accepted orders/s",
        unit="orders/s",
    )


@dataclass
class Baseline:
    """The session's baseline window and what the load generator measured in it."""

    window: Window
    achieved_rate: float  # generator: 2xx orders/s over its order window
    offered_rate: float
    source: str = ""  # which test/run recorded it
    values: dict[str, float] = field(default_factory=dict)  # rendered baseline query -> value

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window.as_dict(),
            "achieved_rate": self.achieved_rate,
            "offered_rate": self.offered_rate,
            "source": self.source,
            "values": dict(self.values),
        }

    def value_of(self, slo: Slo, client: PromClient, *, variables: Mapping[str, Any]) -> float:
        """``slo.expr`` over the baseline window (cached); raise :class:`HftError` on no data."""
        query = slo.render(self.window, variables=variables)
        if query in self.values:
            return self.values[query]
        try:
            value = client.scalar(query, at=self.window.end)
        except PromError as e:
            raise HftError(f"baseline of {slo.name!r}: Prometheus could not answer {query!r}: {e}") from e
        if value is None or math.isnan(value):
            raise HftError(
                f"baseline of {slo.name!r}: expected a value for {query!r} over the baseline window "
                f"({self.window.seconds:.1f}s ending {self.window.end:.3f}), got no data; the baseline "
                "window must carry the same series (was the baseline load run against this platform?)"
            )
        self.values[query] = value
        return value


def resolve(rel: Relative, baseline_value: float) -> Slo:
    """A plain SLO whose threshold is ``ratio`` x ``baseline_value``."""
    threshold = rel.ratio * baseline_value
    return dataclasses.replace(
        rel.slo,
        name=rel.name,
        threshold=threshold,
        description=f"{rel.slo.description or rel.slo.name} {rel.slo.comparator} {rel.ratio:.0%} of the "
        f"baseline ({baseline_value:.6g})",
    )
