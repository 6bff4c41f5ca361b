"""pytest entry point (``pytest11: hftk8s``): wiring only.

Registers the ``hftk8s`` option group. It must stay inert: no deploy, no cluster connection and no
subprocess at import or configure time; all work happens when a test requests a fixture.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hftk8s", "HFT platform on Kubernetes: deploy, gate, load, chaos, SLOs")
    group.addoption(
        "--hft-cluster",
        dest="hft_cluster",
        default=None,
        help="cluster to run against: 'local' (embedded one-node cluster) or a kube context name",
    )
