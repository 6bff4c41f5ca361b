"""What the ``hft_load`` fixture hands to a test: factories for load runs against one target.

Each run it creates is remembered (``runs``) so the plugin can evaluate SLOs over the runs' time
windows and put their summaries in the report. No pytest imports, no Prometheus.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

from pytest_hftk8s.load.run import LoadRun, Progress


class LoadDriver:
    """Creates :class:`LoadRun` objects aimed at ``target`` (host, port) - normally nginx."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        results_dir: pathlib.Path | None = None,
        progress: Progress | None = None,
        max_duration: float | None = None,
    ) -> None:
        self.target = target
        self.results_dir = results_dir
        self.progress = progress
        self.max_duration = max_duration
        self.runs: list[LoadRun] = []

    def constant_rate(self, *, rate: float, duration: float, **options: Any) -> LoadRun:
        """Open loop: ``rate`` orders/s for ``duration`` s, latency from each intended send time."""
        return self._run("open", rate=rate, duration=duration, **options)

    def closed_loop(self, *, connections: int = 16, duration: float, **options: Any) -> LoadRun:
        """Closed loop: ``connections`` clients each send as soon as the previous answer arrived."""
        return self._run("closed", rate=1.0, duration=duration, connections=connections, **options)

    def _run(
        self,
        mode: str,
        *,
        rate: float,
        duration: float,
        make_request: Callable[[int], bytes] | None = None,
        **options: Any,
    ) -> LoadRun:
        if self.max_duration is not None:
            options.setdefault("deadline", self.max_duration)
        run = LoadRun(
            base_url=self.target,
            mode=mode,
            rate=rate,
            duration=duration,
            results_dir=self.results_dir,
            name=options.pop("name", f"load{len(self.runs) + 1}"),
            progress=self.progress,
            make_request=make_request,
            **options,
        )
        self.runs.append(run)
        return run
