"""The ``hft_slo`` fixture's logic: evaluate checks over a test's window, record them, and assert.

It fills in what the checks may read - the test's window and load summaries, the PromQL variables
(namespace, offered order rate), the platform's database and HTTP entry - resolves baseline-relative
SLOs against the session baseline, records every result on the test (report, JUnit properties, the
``pytest_hftk8s_slo_evaluated`` hook) and, for :meth:`SloChecker.check`, raises
:class:`~pytest_hftk8s.errors.SloViolation` on a blocking miss. The judgement itself is ``slo``'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hftk8s.errors import HftError
from pytest_hftk8s.orchestration.recorder import TestState, state_of
from pytest_hftk8s.results import AckCheck, FillCheck, OomSequence, Recovery, SloResult, Window
from pytest_hftk8s.slo import builtin, evaluate, relative
from pytest_hftk8s.slo.database import DATABASE_CHECKS
from pytest_hftk8s.slo.prom import PromClient

if TYPE_CHECKING:
    from pytest_hftk8s.orchestration.chaos import Experiment
    from pytest_hftk8s.orchestration.runtime import HftRuntime


def variables(runtime: HftRuntime, state: TestState, *, live: bool = False) -> dict[str, Any]:
    """PromQL variables: the namespace, and the offered order rate of the test's open-loop runs."""
    out: dict[str, Any] = {"namespace": runtime.require_platform().namespace}
    offered = state.live_offered_rate() if live else state.offered_order_rate()
    if offered:
        out["offered_rate"] = f"{offered:.6g}"
    return out


def resolve(
    runtime: HftRuntime, checks: Sequence[Any], client: PromClient, values: dict[str, Any]
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Baseline-relative SLOs made absolute against the session's baseline; the rest passed through."""
    plain: list[Any] = []
    extras: list[dict[str, Any]] = []
    for c in checks:
        if not isinstance(c, relative.Relative):
            plain.append(c)
            extras.append({})
            continue
        baseline = runtime.baseline
        if baseline is None:
            raise HftError(
                f"SLO {c.name!r} is relative to the session's baseline, but no baseline was recorded: "
                "request the hft_baseline fixture (or run a passing load run named 'baseline' first)"
            )
        value = relative.value_of(baseline, c.slo, client, variables=values)
        plain.append(relative.resolve(c, value))
        extras.append({"baseline_value": value, "ratio": c.ratio, "baseline_window": baseline.window})
    return plain, extras


def evaluate_for(
    runtime: HftRuntime,
    item: pytest.Item,
    checks: Sequence[Any],
    *,
    window: Window | tuple[float, float] | None = None,
    experiment: Experiment | None = None,
) -> list[SloResult]:
    """Evaluate ``checks`` over the test's window (or ``window``); record the results; return them."""
    platform = runtime.require_platform()
    state = state_of(item)
    if isinstance(window, tuple):
        window = Window(*window)
    span = window or state.window()
    values = variables(runtime, state)
    began = time.perf_counter()
    client = PromClient(platform.prometheus_url)
    try:
        plain, extras = resolve(runtime, checks, client, values)
        results = evaluate.evaluate(
            plain, span, client, variables=values, loads=state.summaries(),
            # Only the database checks need it: a PromQL-only SLO opens no path to PostgreSQL.
            db=runtime.db_target() if any(isinstance(c, DATABASE_CHECKS) for c in plain) else None,
            api_url=platform.api_url,
        )  # fmt: skip
    finally:
        client.close()
        state.overhead_s += time.perf_counter() - began
    for r, extra in zip(results, extras, strict=True):
        r.extra.update(extra)
    state.slos.extend(results)
    for r in results:
        item.user_properties.append((f"hft_slo.{r.name}", r.observed))
        item.user_properties.append((f"hft_slo.{r.name}.passed", r.passed))
    if experiment is not None:
        attach(experiment, results)
    runtime.config.hook.pytest_hftk8s_slo_evaluated(item=item, results=results)
    return results


def attach(experiment: Experiment, results: Sequence[SloResult]) -> None:
    """What measuring checks measured goes onto the experiment's record (recovery, orders, fills...)."""
    record = experiment.record
    for r in results:
        if isinstance(r.detail, Recovery):
            record.recovery = r.detail
        elif isinstance(r.detail, AckCheck):
            record.acked_vs_stored = r.detail
        elif isinstance(r.detail, FillCheck):
            record.fills = r.detail
        elif isinstance(r.detail, OomSequence):
            record.oom_sequence = r.detail


class SloChecker:
    """What the ``hft_slo`` fixture hands out: evaluate SLOs over this test's window, and assert."""

    builtin = builtin

    def __init__(self, runtime: HftRuntime, item: pytest.Item) -> None:
        self._runtime = runtime
        self._item = item

    def evaluate(
        self,
        *checks: Any,
        window: Window | tuple[float, float] | None = None,
        experiment: Experiment | None = None,
    ) -> list[SloResult]:
        """Evaluate and record; never raises for a miss."""
        return evaluate_for(self._runtime, self._item, checks, window=window, experiment=experiment)

    def check(
        self,
        *checks: Any,
        window: Window | tuple[float, float] | None = None,
        experiment: Experiment | None = None,
    ) -> list[SloResult]:
        """Evaluate, record, and raise :class:`~pytest_hftk8s.errors.SloViolation` on any blocking miss.

        With ``experiment=``, what the checks measured (recovery, acknowledged orders, fills, the OOM
        sequence) is also written on that experiment's record.
        """
        __tracebackhide__ = True
        results = self.evaluate(*checks, window=window, experiment=experiment)
        evaluate.check(results, report_path=self._runtime.report_path(), links=self._runtime.panel_links())
        return results
