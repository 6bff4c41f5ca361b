"""Fixtures for the manifest tests: every profile rendered once per session (helpers: manifest_support.py)."""

from __future__ import annotations

import pytest
from manifest_support import render

from pytest_hftk8s import manifests


@pytest.fixture(scope="session", params=manifests.profiles())
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    """(profile, rendered objects) for every overlay under manifests/overlays."""
    return request.param, render(request.param)
