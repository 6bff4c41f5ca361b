"""Sweep tests: the USL fit and the ceiling search as pure functions (synthetic points and probes),
the replica rendering, the sweep's selection through pytester, and one small sweep end to end on the
local cluster (``slow``).

``pytest_plugins`` is not allowed in a non-root conftest, so pytester is registered here when this
conftest loads (as tests/plugin/conftest.py does).
"""

from __future__ import annotations

import importlib.metadata

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture
def base_args() -> list[str]:
    """What every inner pytest run gets: the plugin (when not installed), no cache, no asyncio plugin."""
    args = ["-p", "no:cacheprovider", "-p", "no:asyncio", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if not any(ep.name == "hftk8s" for ep in importlib.metadata.entry_points(group="pytest11")):
        args += ["-p", "pytest_hftk8s.plugin"]
    return args
