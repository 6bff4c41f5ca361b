"""The house rules of docs/ARCHITECTURE.md, checked: the import-linter contracts ("parts and
nevers"), mypy on the plugin package, and the rules an import graph cannot see (where the
environment is read, where cgroups are touched, which modules may not come back)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
PKG = ROOT / "pytest_hftk8s"
BIN = pathlib.Path(sys.executable).parent


def _sources() -> list[pathlib.Path]:
    return sorted(PKG.rglob("*.py"))


def test_import_linter_contracts_hold() -> None:
    out = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    kept = re.findall(r"^(.*) KEPT$", out.stdout, re.M)
    assert len(kept) >= 10, out.stdout  # every contract ran (none silently dropped from the config)


def test_mypy_is_clean_on_the_plugin_package() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "pytest_hftk8s"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_the_old_grab_bags_are_gone() -> None:
    assert not (PKG / "runtime.py").exists()
    assert not (PKG / "session.py").exists()
    assert not (PKG / "resilience").exists()


# Reading the process environment as *configuration* happens in settings.py only. The local backend
# passes PATH & co. to the processes it starts (as a container runtime does), and pg_entrypoint.py
# runs inside a pod as its image's entrypoint: those read the environment of a container, not ours.
ENVIRONMENT_EXCEPTIONS = {"settings.py", "cluster/local/cluster.py", "cluster/local/probes.py",
                          "cluster/local/pg_entrypoint.py"}  # fmt: skip


def _offenders(rule: str) -> list[str]:
    out = []
    for path in _sources():
        rel = str(path.relative_to(PKG))
        text = path.read_text()
        if (
            rule == "environment"
            and rel not in ENVIRONMENT_EXCEPTIONS
            and re.search(r"os\.environ|getenv\(", text)
        ):
            out.append(rel)
        if (
            rule == "cgroups"
            and not rel.startswith("cluster/local/")
            and "/sys/fs/cgroup" in text.replace("``/sys/fs/cgroup``", "")
        ):
            out.append(rel)
        if rule == "docstring" and text.strip() and not text.lstrip().startswith('"""'):
            out.append(rel)
    return out


def test_configuration_is_read_only_in_settings() -> None:
    assert _offenders("environment") == [], "read the environment through HftSettings (settings.py)"


def test_only_the_local_backend_touches_cgroups() -> None:
    assert _offenders("cgroups") == []


def test_every_module_says_what_it_does() -> None:
    assert _offenders("docstring") == [], (
        "start each module with a docstring: its job, and what it must not do"
    )
