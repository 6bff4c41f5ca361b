"""Plugin behaviour through ``pytester``: options, markers, fixtures, reports, teardown.

``pytest_plugins`` is not allowed in a non-root conftest, so pytester is registered here when this
conftest loads (its option and configure hooks are historic, so late registration is complete).
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import shutil
import sys
from collections.abc import Iterator

import pytest

TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "slo"))
sys.path.insert(0, str(TESTS / "gate"))

from slo_servers import PROMETHEUS, Exporter, Prometheus, exporter_and_prometheus  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


def _installed() -> bool:
    return any(ep.name == "hftk8s" for ep in importlib.metadata.entry_points(group="pytest11"))


@pytest.fixture
def base_args() -> list[str]:
    """Arguments every inner run gets: load the plugin if it is not installed; quiet the editable
    install's rewrite warning (an artefact of scikit-build-core's redirect finder)."""
    args = ["-p", "no:cacheprovider", "-p", "no:asyncio", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if not _installed():
        args += ["-p", "pytest_hftk8s.plugin"]
    return args


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[Exporter, Prometheus]]:
    if shutil.which(PROMETHEUS) is None:
        pytest.skip(f"needs Debian's prometheus binary at {PROMETHEUS} (apt-get install prometheus)")
    with exporter_and_prometheus() as pair:
        exporter, _prom = pair
        # What the session's series preflight asks of any cluster: kube-state-metrics and cAdvisor
        # series of its namespace (a scripted cluster has no real kubelet, so the exporter says them).
        pod = {"namespace": "hft", "pod": "backend-0"}
        exporter.ctl("set", "kube_pod_status_ready", condition="true", **pod)
        exporter.ctl("inc", "container_cpu_usage_seconds_total", value=1.0, container="backend", **pod)
        yield pair
