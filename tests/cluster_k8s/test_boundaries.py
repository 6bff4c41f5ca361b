"""The kubernetes client stays behind the kubernetes backend, and is imported only when used."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "pytest_hftk8s"
BACKEND = PACKAGE / "cluster" / "kubernetes"


def _imports_kubernetes(path: pathlib.Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        if any(name == "kubernetes" or name.startswith("kubernetes.") for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_kubernetes_backend_imports_the_client() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if BACKEND not in path.parents and (lines := _imports_kubernetes(path))
    }
    assert offenders == {}
    assert any(_imports_kubernetes(p) for p in BACKEND.glob("*.py"))  # the check can see imports


def test_backend_and_chaos_import_without_loading_the_client() -> None:
    code = (
        "import sys, pytest_hftk8s.cluster.kubernetes, pytest_hftk8s.chaos, pytest_hftk8s.cluster.kubernetes.chaos_driver;"
        "print(sorted(m for m in sys.modules if m == 'kubernetes' or m.startswith('kubernetes.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
