"""Fixtures for the manifest tests: every profile rendered once per session."""

from __future__ import annotations

import pytest

from pytest_hftk8s import manifests


@pytest.fixture(scope="session", params=manifests.profiles())
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    """(profile, rendered objects) for every overlay under manifests/overlays."""
    return request.param, manifests.render(request.param)
