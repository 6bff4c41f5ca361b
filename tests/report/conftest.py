"""Report tests: plain records in, files out. The bundle reads the scripted cluster (tests/gate)."""

from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gate"))


@pytest.fixture(scope="session")
def nine_test_report(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A nine-test session (tests/report/samples.py) written as index.html: rendered once, shared."""
    import samples

    from pytest_hftk8s.report import html

    return html.write(samples.session(), tmp_path_factory.mktemp("hft-report"))
