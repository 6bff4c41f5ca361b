"""Builds engine_cpp's native Catch2 tests (ut_*.cpp) with CMake + Ninja and runs them via ctest.

The build lives in build/native (gitignored) and is incremental, so re-runs cost seconds. Skips,
with the reason, only when the toolchain (cmake, ninja, Catch2) is missing; any compile error or
failing native test fails this test.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
from filelock import FileLock

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "native"
# Two pytest sessions (or xdist workers) must not run ninja in the same build dir at once.
LOCK = ROOT / "build" / "native.lock"
CONFIGURE = [
    "cmake",
    "-S",
    str(ROOT / "engine_cpp"),
    "-B",
    str(BUILD),
    "-G",
    "Ninja",
    "-DCMAKE_BUILD_TYPE=Release",
    "-DHFT_ENGINE_BUILD_TESTS=ON",
    "-DHFT_ENGINE_BUILD_PYTHON=OFF",
]


def run(cmd: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)


def output(step: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(step.args)}\n{step.stdout}\n{step.stderr}"


@pytest.mark.slow
def test_native_unit_tests_pass() -> None:
    for tool in ("cmake", "ninja", "ctest"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not on PATH; install cmake and ninja-build (see .ci/install)")
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(LOCK, timeout=300):
        configure = run(CONFIGURE, timeout=120)
        if configure.returncode != 0 and "Catch2" in configure.stdout + configure.stderr:
            pytest.skip("CMake cannot find Catch2 v2; install Debian's catch2 package (see .ci/install)")
        assert configure.returncode == 0, output(configure)
        build = run(["ninja", "-C", str(BUILD), "ut_engine"], timeout=300)
        assert build.returncode == 0, output(build)
        tests = run(
            ["ctest", "--test-dir", str(BUILD), "--output-on-failure", "--timeout", "60"], timeout=120
        )
    assert tests.returncode == 0, output(tests)
    assert "100% tests passed" in tests.stdout, output(tests)
