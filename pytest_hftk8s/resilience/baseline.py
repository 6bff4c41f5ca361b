"""The session's baseline window: recorded once, from the first passing load run named ``baseline``,
or measured on demand by the ``hft_baseline`` fixture.

Baseline-relative SLOs (:mod:`pytest_hftk8s.slo.relative`) and recovery times compare against it.
No pytest imports and no Prometheus queries here; it only reads load-run summaries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_hftk8s.slo.model import Window
from pytest_hftk8s.slo.relative import Baseline

BASELINE_RUN = "baseline"


def from_run(run: Any, *, source: str) -> Baseline | None:
    """A baseline from one finished, valid open-loop run with accepted orders; else ``None``."""
    summary = getattr(run, "summary", None)
    if summary is None or not summary.valid or summary.mode != "open" or summary.ok <= 0:
        return None
    window = summary.order_window
    return Baseline(
        window=Window(window["start"], window["end"]),
        achieved_rate=summary.achieved_rate,
        offered_rate=summary.offered_rate,
        source=f"{source} (load run {summary.name!r})",
    )


def from_runs(runs: Iterable[Any], *, source: str) -> Baseline | None:
    """The first load run named ``baseline`` among ``runs`` that makes a usable baseline."""
    for run in runs:
        if getattr(run, "name", "") == BASELINE_RUN:
            baseline = from_run(run, source=source)
            if baseline is not None:
                return baseline
    return None


def measure(runtime: Any, item: Any, *, rate: float, duration: float) -> Baseline:
    """Measure the session's baseline with one constant-rate run now (when no test recorded one)."""
    from pytest_hftk8s.errors import HftError
    from pytest_hftk8s.load.driver import LoadDriver

    driver = LoadDriver(  # not the test's driver: the baseline run must not widen that test's window
        runtime.platform.nginx,
        results_dir=runtime.settings.report_dir / "load",
        progress=runtime.progress,
        max_duration=runtime.settings.load_timeout,
    )
    with driver.constant_rate(rate=rate, duration=duration, name=BASELINE_RUN) as run:
        pass
    baseline = from_run(run, source=f"{item.nodeid} (hft_baseline fixture)")
    if baseline is None:
        summary = run.summary
        raise HftError(
            f"expected a valid baseline run ({rate:g}/s for {duration:g}s) with accepted orders; got "
            f"{summary.ok if summary else 0} ok, invalid reasons {summary.invalid_reasons if summary else '?'}"
        )
    return baseline
