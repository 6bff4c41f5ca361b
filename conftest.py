"""What belongs to this repository's own test run (not to the plugin its users install).

The end-to-end tests - real PostgreSQL, Redis, nginx, Prometheus, the local cluster, inner pytest
sessions - are marked ``slow`` and are opt-in, as kopf's ``--with-e2e``/``--only-e2e``:

- ``pytest``                 the fast tests; each end-to-end test is skipped and says how to run it;
- ``pytest --with-e2e``      everything (what CI and the README's test command run);
- ``pytest --only-e2e``      the end-to-end tests alone.
"""

from __future__ import annotations

import pytest

E2E_MARK = "slow"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hftk8s-repo", "pytest-hftk8s repository tests")
    group.addoption(
        "--with-e2e", action="store_true", default=False, help="also run the slow end-to-end tests"
    )
    group.addoption(
        "--only-e2e", action="store_true", default=False, help="run only the slow end-to-end tests"
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("with_e2e") and config.getoption("only_e2e"):
        raise pytest.UsageError("--with-e2e and --only-e2e exclude each other: pick one")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    with_e2e, only_e2e = config.getoption("with_e2e"), config.getoption("only_e2e")
    if with_e2e:
        return
    if only_e2e:
        keep = [item for item in items if item.get_closest_marker(E2E_MARK)]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
        return
    skip = pytest.mark.skip(reason="slow end-to-end test (real servers): run with --with-e2e or --only-e2e")
    for item in items:
        if item.get_closest_marker(E2E_MARK):
            item.add_marker(skip)
