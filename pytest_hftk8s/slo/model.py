"""SLO definitions, windows, comparators and results: plain data and pure functions.

No I/O and no Prometheus here: :mod:`pytest_hftk8s.slo.prom` queries, this module judges.

An SLO's ``expr`` may use placeholders that are filled per evaluation:
``$window`` (the window length as a PromQL duration in ms, e.g. ``12000ms``; kube-burner's
``{{.elapsed}}`` is accepted as a synonym), ``$window_wide`` (the window plus one look-back of
about a scrape interval before it, for event counters: ``increase()`` only sees changes between
samples inside its range, so a restart or registration just after the window opened - before the
window's first sample - would be invisible in ``$window``), ``$namespace`` and ``$offered_rate``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_hftk8s.errors import ConfigError

COMPARATORS = (">=", "<=", ">", "<", "==", "between", "oneOf")


@dataclass(frozen=True)
class Window:
    """A closed time range in epoch seconds (wall clock, the clock Prometheus stamps samples with)."""

    start: float
    end: float
    lookback: float = 0.0

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def promql_range(self) -> str:
        # Milliseconds, not whole seconds: rounding a 6.001 s window up to [7s] would dilute a rate
        # by 1/7 with samples from before the window.
        return f"{max(1, round(self.seconds * 1000))}ms"

    @property
    def promql_range_wide(self) -> str:
        return f"{max(1, round((self.seconds + self.lookback) * 1000))}ms"

    def as_dict(self) -> dict[str, float]:
        return {"start": self.start, "end": self.end, "seconds": self.seconds}


@dataclass(frozen=True)
class Slo:
    name: str
    expr: str
    comparator: str
    threshold: Any
    description: str = ""
    severity: str = "error"  # "error"/"critical" fail the test; "warning"/"info" are only reported
    unit: str = ""

    def __post_init__(self) -> None:
        check_threshold(self.name, self.comparator, self.threshold)
        if not self.expr.strip():
            raise ConfigError(f"SLO {self.name!r}: expected a PromQL expr, got an empty string")
        if self.severity not in ("critical", "error", "warning", "info"):
            raise ConfigError(
                f"SLO {self.name!r}: severity must be critical, error, warning or info; got {self.severity!r}"
            )

    @property
    def blocking(self) -> bool:
        return self.severity in ("critical", "error")

    def render(self, window: Window, *, variables: Mapping[str, Any] | None = None) -> str:
        values = {
            "window": window.promql_range,
            "window_wide": window.promql_range_wide,
            **{k: str(v) for k, v in (variables or {}).items()},
        }
        text = self.expr.replace("{{.elapsed}}", values["window"])
        # Longest names first so $window_x would never be clobbered by $window.
        for key in sorted(values, key=len, reverse=True):
            text = text.replace("$" + key, values[key])
        return text


@dataclass
class SloResult:
    """One evaluated SLO, as it goes into the report and JUnit."""

    name: str
    query: str
    comparator: str
    threshold: Any
    observed: float | dict[str, float] | None
    passed: bool
    window: dict[str, float]
    severity: str = "error"
    message: str = ""
    unit: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "query": self.query,
            "observed": self.observed,
            "threshold": self.threshold,
            "comparator": self.comparator,
            "passed": self.passed,
            "severity": self.severity,
            "message": self.message,
            "unit": self.unit,
            "window": self.window,
        }
        if self.extra:
            out["extra"] = dict(self.extra)
        return out


def check_threshold(name: str, comparator: str, threshold: Any) -> None:
    """Raise ``ConfigError`` unless ``threshold`` fits ``comparator``."""
    if comparator not in COMPARATORS:
        raise ConfigError(
            f"SLO {name!r}: comparator must be one of {', '.join(COMPARATORS)}; got {comparator!r}"
        )
    if comparator == "between":
        ok = (
            isinstance(threshold, Sequence)
            and not isinstance(threshold, str)
            and len(threshold) == 2
            and all(_is_number(t) for t in threshold)
            and threshold[0] <= threshold[1]
        )
        if not ok:
            raise ConfigError(
                f"SLO {name!r}: 'between' needs [low, high] numbers with low <= high; got {threshold!r}"
            )
    elif comparator == "oneOf":
        ok = isinstance(threshold, Sequence) and not isinstance(threshold, str) and len(threshold) > 0
        if not ok or not all(_is_number(t) for t in threshold):
            raise ConfigError(f"SLO {name!r}: 'oneOf' needs a non-empty list of numbers; got {threshold!r}")
    elif not _is_number(threshold):
        raise ConfigError(f"SLO {name!r}: {comparator!r} needs a number threshold; got {threshold!r}")


def compare(observed: float, comparator: str, threshold: Any) -> bool:
    """Whether ``observed`` satisfies ``comparator threshold``; NaN never does."""
    if math.isnan(observed):
        return False
    if comparator == ">=":
        return observed >= threshold
    if comparator == "<=":
        return observed <= threshold
    if comparator == ">":
        return observed > threshold
    if comparator == "<":
        return observed < threshold
    if comparator == "==":
        return math.isclose(observed, threshold, rel_tol=1e-9, abs_tol=1e-12)
    if comparator == "between":
        low, high = threshold
        return low <= observed <= high
    if comparator == "oneOf":
        return any(math.isclose(observed, t, rel_tol=1e-9, abs_tol=1e-12) for t in threshold)
    raise ConfigError(f"unknown comparator {comparator!r}; expected one of {', '.join(COMPARATORS)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
