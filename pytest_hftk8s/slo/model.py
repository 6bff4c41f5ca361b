"""SLO definitions and comparators: what may be checked, and how a value is judged against a bound.

:class:`Slo` is one PromQL expression evaluated as an instant query at the window's end with the
window's length as its range; :class:`Alert` is a kube-burner alert-profile entry, evaluated the way
kube-burner does (a range query over the window that fires when it returns any sample). Both, and
the checks of the sibling modules (client latency, recovery, database, OOM sequence), follow the
:class:`Check` protocol: ``evaluate(context) -> SloResult``. An expr may use the placeholders of
:mod:`.queries` (``$window``, ``$window_wide``, ``$namespace``, ``$offered_rate``; kube-burner's
``{{.elapsed}}`` is ``$window``). No assertions here: :func:`~.evaluate.check` raises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pytest_hftk8s.errors import ConfigError
from pytest_hftk8s.results import SloResult, Window
from pytest_hftk8s.slo import queries

if TYPE_CHECKING:
    from pytest_hftk8s.slo.evaluate import Context

COMPARATORS = (">=", "<=", ">", "<", "==", "between", "oneOf")
SEVERITIES = ("critical", "error", "warning", "info")


@runtime_checkable
class Check(Protocol):
    """Anything ``hft_slo.check()`` accepts: a named, judged measurement over the test's window."""

    @property
    def name(self) -> str: ...

    @property
    def severity(self) -> str: ...

    def evaluate(self, ctx: Context) -> SloResult: ...


def _check_severity(name: str, severity: str) -> None:
    if severity not in SEVERITIES:
        raise ConfigError(f"SLO {name!r}: severity must be one of {', '.join(SEVERITIES)}; got {severity!r}")


@dataclass(frozen=True)
class Slo:
    """A PromQL expression, a comparator and a threshold: every returned series must hold."""

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
        _check_severity(self.name, self.severity)

    @property
    def blocking(self) -> bool:
        return self.severity in ("critical", "error")

    def render(self, window: Window, *, variables: Mapping[str, Any] | None = None) -> str:
        return queries.render(
            self.expr,
            {"window": window.promql_range, "window_wide": window.promql_range_wide, **(variables or {})},
        )

    def evaluate(self, ctx: Context) -> SloResult:
        from pytest_hftk8s.slo.evaluate import instant

        return instant(self, ctx)


@dataclass(frozen=True)
class Alert:
    """A kube-burner alert-profile entry: ``expr`` fires when it returns any sample in the window.

    As in kube-burner the expression is evaluated as a range query over the window (``step`` seconds
    apart); a firing alert with severity error or critical fails the test. Unlike an alerting rule,
    silence alone is not success: the series the expression reads must exist in the window, or the
    result is "no data", which fails too.
    """

    name: str
    expr: str
    description: str = ""
    severity: str = "error"
    step: float = 1.0

    def __post_init__(self) -> None:
        if not self.expr.strip():
            raise ConfigError(f"alert {self.name!r}: expected a PromQL expr, got an empty string")
        _check_severity(self.name, self.severity)
        if not (self.step > 0 and math.isfinite(self.step)):
            raise ConfigError(f"alert {self.name!r}: step must be > 0 seconds; got {self.step!r}")

    @property
    def blocking(self) -> bool:
        return self.severity in ("critical", "error")

    def evaluate(self, ctx: Context) -> SloResult:
        from pytest_hftk8s.slo.evaluate import alert

        return alert(self, ctx)


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


def result(
    check: Any, *, window: Window, observed: Any, passed: bool, query: str = "", comparator: str = "",
    threshold: Any = None, unit: str = "", message: str = "", extra: Mapping[str, Any] | None = None,
) -> SloResult:  # fmt: skip
    """A :class:`SloResult` for ``check`` (its name and severity)."""
    return SloResult(
        name=check.name,
        query=query,
        comparator=comparator,
        threshold=list(threshold) if isinstance(threshold, tuple | list) else threshold,
        observed=observed,
        passed=passed,
        window=window,
        severity=check.severity,
        unit=unit,
        message=message,
        extra=dict(extra or {}),
    )
