"""What the ``hft_load`` fixture hands to a test: factories for load runs against one target.

Each run it creates is remembered (``runs``) and announced to ``on_start`` before it begins, so the
plugin can hold the measurement lock, evaluate SLOs over the runs' windows and put their summaries in
the report. ``defaults`` (from an ``@pytest.mark.hft_load(rate=..., duration=...)`` marker) fill in
whatever a call leaves out. No pytest imports, no Prometheus.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from pytest_hftk8s.errors import LoadError
from pytest_hftk8s.load.run import LoadRun, Progress

#: Keywords a ``hft_load`` marker may set as the test's defaults.
MARKER_KEYS = frozenset({"rate", "duration", "users", "connections", "mix", "request_timeout", "seed"})


class LoadDriver:
    """Creates :class:`LoadRun` objects aimed at ``target`` (host, port) - normally nginx."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        results_dir: pathlib.Path | None = None,
        progress: Progress | None = None,
        max_duration: float | None = None,
        defaults: Mapping[str, Any] | None = None,
        on_start: Callable[[LoadRun], None] | None = None,
        extra_cpu: Callable[[], float] | None = None,
    ) -> None:
        unknown = sorted(set(defaults or {}) - MARKER_KEYS)
        if unknown:
            raise LoadError(
                f"hft_load marker: unknown keywords {unknown}; expected some of {sorted(MARKER_KEYS)}"
            )
        self.target = target
        self.results_dir = results_dir
        self.progress = progress
        self.max_duration = max_duration
        self.defaults = dict(defaults or {})
        self.on_start = on_start
        #: CPU other threads of this process spend for the load (an in-process port-forward).
        self.extra_cpu = extra_cpu
        self.runs: list[LoadRun] = []

    def constant_rate(
        self, *, rate: float | None = None, duration: float | None = None, **options: Any
    ) -> LoadRun:
        """Open loop: ``rate`` requests/s for ``duration`` s, latency from each intended send time."""
        return self._run("open", rate=rate, duration=duration, **options)

    def closed_loop(self, *, connections: int = 16, duration: float | None = None, **options: Any) -> LoadRun:
        """Closed loop: ``connections`` clients each send as soon as the previous answer arrived."""
        return self._run("closed", rate=1.0, duration=duration, connections=connections, **options)

    def _run(self, mode: str, *, rate: float | None, duration: float | None, **options: Any) -> LoadRun:
        merged = {k: v for k, v in self.defaults.items() if k not in ("rate", "duration")} | options
        rate = rate if rate is not None else self.defaults.get("rate")
        duration = duration if duration is not None else self.defaults.get("duration")
        if rate is None or duration is None:
            raise LoadError(
                f"{'an open' if mode == 'open' else 'a closed'}-loop run needs a rate and a duration: pass them, "
                "or mark the test "
                "@pytest.mark.hft_load(rate=..., duration=...)"
            )
        if "make_request" in merged and "mix" in merged and "mix" not in options:
            merged.pop("mix")  # the caller's own requests win over the marker's flow
        if self.max_duration is not None:
            merged.setdefault("deadline", self.max_duration)
        run = LoadRun(
            base_url=self.target,
            mode=mode,
            rate=float(rate),
            duration=float(duration),
            results_dir=self.results_dir,
            name=merged.pop("name", f"load{len(self.runs) + 1}"),
            progress=self.progress,
            extra_cpu=self.extra_cpu,
            **merged,
        )
        self.runs.append(run)
        if self.on_start is not None:
            run.on_enter = self.on_start
        return run
