"""Continuous SLO probes: evaluate SLOs periodically while something runs (Litmus Continuous/OnChaos).

A :class:`ContinuousProbe` runs on its own thread: every ``interval`` seconds it evaluates its SLOs
over the sliding window ``[max(started, now - window), now]`` through the one evaluator
(:func:`pytest_hftk8s.slo.evaluate.evaluate`), keeps every round as plain data, and - when
``stop_on_failure`` - calls ``on_failure`` once at the first round with a blocking miss, then stops.
It never asserts and never touches chaos objects itself: the caller decides what "stop" means.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_hftk8s.results import Window, to_dict
from pytest_hftk8s.slo.model import Check
from pytest_hftk8s.slo.prom import PromClient, PromError


@dataclass
class ProbeRound:
    """One evaluation of every probe SLO."""

    at: float
    window: dict[str, float]
    passed: bool
    results: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "window": self.window, "passed": self.passed, "results": self.results}


class ContinuousProbe:
    """Evaluates ``slos`` every ``interval`` s until :meth:`stop` (or the first miss with ``stop_on_failure``)."""

    def __init__(
        self,
        slos: Sequence[Check],
        *,
        prometheus_url: str,
        interval: float = 2.0,
        window: float | None = None,
        variables: Mapping[str, Any] | None = None,
        stop_on_failure: bool = False,
        on_failure: Callable[[ProbeRound], None] | None = None,
        name: str = "probe",
    ) -> None:
        if interval <= 0:
            raise ValueError(f"probe interval must be > 0 seconds, got {interval!r}")
        self.slos = list(slos)
        self.prometheus_url = prometheus_url
        self.interval = interval
        self.window = window if window is not None else max(2.0, 2 * interval)
        self.variables = dict(variables or {})
        self.stop_on_failure = stop_on_failure
        self.on_failure = on_failure
        self.name = name
        self.rounds: list[ProbeRound] = []
        self.failed_at: float | None = None
        self.started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ContinuousProbe:
        self.started = time.time()
        self._thread = threading.Thread(target=self._main, name=f"hft-probe-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop probing; waits (bounded) for a round in flight to finish."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _main(self) -> None:
        client = PromClient(self.prometheus_url, timeout_s=min(5.0, max(1.0, self.interval)))
        try:
            while not self._stop.wait(self.interval):
                round_ = self.evaluate_once(client)
                self.rounds.append(round_)
                if not round_.passed and self.failed_at is None:
                    self.failed_at = round_.at
                    if self.stop_on_failure:
                        if self.on_failure is not None:
                            self.on_failure(round_)
                        return
        finally:
            client.close()

    def evaluate_once(self, client: PromClient) -> ProbeRound:
        from pytest_hftk8s.slo.evaluate import evaluate

        now = time.time()
        window = Window(max(self.started, now - self.window), now)
        try:
            results = evaluate(
                self.slos, window, client, variables=self.variables, settle_timeout_s=min(2.0, self.interval)
            )
        except PromError as e:  # evaluate reports per-SLO errors itself; this is the settle query
            return ProbeRound(now, to_dict(window), False, [{"error": str(e)}])
        blocking_miss = any(not r.passed and r.blocking for r in results)
        return ProbeRound(now, to_dict(window), not blocking_miss, [to_dict(r) for r in results])

    def summary(self) -> dict[str, Any]:
        return {
            "mode": "OnChaos",
            "interval_s": self.interval,
            "window_s": self.window,
            "stop_on_failure": self.stop_on_failure,
            "slos": [s.name for s in self.slos],
            "rounds": [r.as_dict() for r in self.rounds],
            "passed": all(r.passed for r in self.rounds) if self.rounds else None,
            "failed_at": self.failed_at,
        }
