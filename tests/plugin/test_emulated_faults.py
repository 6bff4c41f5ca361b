"""The fail-fast paths of a kube-context session, as a user sees them, on ``--hft-cluster=emulated``.

Each missing prerequisite is switched on with ``--hft-emulate-fault`` and the real session runs: the
preflight table says what failed and what to do, within seconds (``--hft-preflight`` alone, and before
anything is applied in a session). A workload whose image cannot be pulled stops the session at the
gate with the kubelet's reason and events, not after the gate's timeout, and leaves nothing running.
"""

from __future__ import annotations

import os
import shutil
import time
from importlib.util import find_spec

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local cluster behind the emulated API needs root"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server"),
    pytest.mark.skipif(find_spec("kmock") is None, reason="needs the emulated extra (kmock)"),
]


@pytest.mark.parametrize(
    ("fault", "row", "says"),
    [
        ("missing=chaos-mesh", "Chaos Mesh CRDs", "helm upgrade --install chaos-mesh"),
        ("unready=chaos-daemon", "chaos-daemon", "chaos-mesh/chaos-daemon: 0/1 ready"),
        ("missing=storage-class", "default StorageClass", "no StorageClass"),
        ("deny=create:stresschaos", "RBAC", "create stresschaos"),
    ],
)
def test_a_missing_prerequisite_is_a_failed_row_within_seconds(
    pytester: pytest.Pytester, base_args: list[str], fault: str, row: str, says: str
) -> None:
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        *base_args, "--hft-cluster=emulated", "--hft-preflight", f"--hft-emulate-fault={fault}", timeout=60
    )
    elapsed = time.monotonic() - started
    assert result.ret != 0
    assert elapsed < 20, elapsed
    out = result.stdout.str()
    assert "Kubernetes v1.33.1" in out  # the API server row: the emulated API answered
    failed = [line for line in out.splitlines() if line.startswith(row) and " FAIL " in line]
    assert failed, out
    assert says in out, out
    result.stdout.fnmatch_lines(["*prerequisite(s) missing, see the table*"])


def test_an_unpullable_image_stops_the_session_at_the_gate(
    pytester: pytest.Pytester, base_args: list[str]
) -> None:
    pytester.makepyfile(test_inner="def test_needs_the_platform(hft_platform):\n    pass\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        *base_args, "--hft-cluster=emulated", "--hft-emulate-fault=unpullable=backend", timeout=120
    )
    elapsed = time.monotonic() - started
    assert result.ret != 0
    assert elapsed < 60, elapsed  # deploy + the gate's fail-fast grace, not its 120 s timeout
    out = result.stdout.str()
    assert "failed fast" in out, out
    assert "container backend is waiting with ImagePullBackOff" in out
    assert 'Back-off pulling image "hftk8s/backend:0.1.0"' in out
    assert "local cluster deleted" in out  # the pods that did start went with the session
