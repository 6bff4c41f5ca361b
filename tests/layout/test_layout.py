"""The repository layout rules of DESIGN.md and STYLE.md, checked."""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_platform_folder_is_not_a_package() -> None:
    # A top-level package named `platform` would shadow the stdlib module pytest itself imports.
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_is_not_shadowed() -> None:
    import platform

    assert hasattr(platform, "python_version"), f"`platform` resolves to {platform.__file__}"


def test_plugin_import_is_inert() -> None:
    # Loading the plugin must not start processes or import heavy cluster clients.
    code = (
        "import sys, pytest_hftk8s.plugin;"
        "bad = [m for m in ('kubernetes', 'subprocess_tee', 'prometheus_api_client') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_packages_importable() -> None:
    for name in ("pytest_hftk8s", "hft_platform", "hft_engine"):
        assert importlib.import_module(name) is not None


def test_ruff_clean() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_test_module_basenames_are_unique() -> None:
    # tests/<topic>/ folders are not packages, so two test modules with one basename collide.
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"rename these test modules so each basename is unique: {dupes}"


def test_ci_runs_the_readmes_test_command() -> None:
    # The README's first screen gives two commands; the second is the test run CI must repeat exactly.
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2, commands
    assert commands[0].startswith("bash .ci/install && ")
    assert "--hft-cluster=local" in commands[0]
    test_command = commands[1].removeprefix("bash .ci/install && ")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "bash .ci/install" in ci
    assert test_command in ci, f"expected .ci/run to run {test_command!r}"
    assert "--with-e2e" in test_command  # CI runs the end-to-end tests too
