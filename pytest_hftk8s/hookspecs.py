"""Hooks other plugins (and conftests) may implement; registered in ``pytest_addhooks``.

Specifications only: no logic, no imports from the rest of the package at runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_hftk8s.cluster.base import Cluster
    from pytest_hftk8s.results import SloResult
    from pytest_hftk8s.settings import HftSettings


@pytest.hookspec(firstresult=True)
def pytest_hftk8s_make_cluster(settings: HftSettings, state_dir: Any, progress: Any) -> Cluster | None:
    """Return a Cluster for ``settings.cluster`` to use instead of the built-in backends.

    ``state_dir`` is a ``pathlib.Path`` shared by all xdist workers; ``progress`` takes one line
    of text for the terminal. Return None to let the built-in selection decide.
    """


@pytest.hookspec
def pytest_hftk8s_platform_ready(
    cluster: Cluster, ready_seconds: float, gate_durations: dict[str, float]
) -> None:
    """Called once, in the process that deployed the platform, after the readiness gates passed."""


@pytest.hookspec
def pytest_hftk8s_slo_evaluated(item: pytest.Item, results: list[SloResult]) -> None:
    """Called after a test's SLOs were evaluated, with their typed results."""


@pytest.hookspec
def pytest_hftk8s_report_written(summary_path: Any, html_path: Any) -> None:
    """Called after summary.json and index.html were written (on the controller only)."""
