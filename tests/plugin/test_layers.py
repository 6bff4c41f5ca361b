"""The layering of STYLE.md, checked on the source: who may import what."""

from __future__ import annotations

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[2] / "pytest_hftk8s"


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _files(*parts: str) -> list[pathlib.Path]:
    out: list[pathlib.Path] = []
    for part in parts:
        target = PKG / part
        out.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    return out


@pytest.mark.parametrize(
    "path", _files("slo", "load", "report", "gate.py", "session.py"), ids=lambda p: p.name
)
def test_logic_layers_never_import_pytest(path: pathlib.Path) -> None:
    assert not {n for n in _imports(path) if n == "pytest" or n.startswith("_pytest")}


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_only_the_slo_package_talks_to_prometheus(path: pathlib.Path) -> None:
    if path.parent.name != "slo":
        assert not {n for n in _imports(path) if n.startswith("prometheus_api_client")}


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        (
            "slo",
            (
                "pytest_hftk8s.load",
                "pytest_hftk8s.report",
                "pytest_hftk8s.cluster.local",
                "pytest_hftk8s.cluster.kubernetes",
                "pytest_hftk8s.gate",
            ),
        ),
        (
            "load",
            ("pytest_hftk8s.slo", "pytest_hftk8s.report", "pytest_hftk8s.cluster", "pytest_hftk8s.gate"),
        ),
        (
            "report",
            (
                "pytest_hftk8s.slo",
                "pytest_hftk8s.load",
                "pytest_hftk8s.cluster.local",
                "pytest_hftk8s.cluster.kubernetes",
            ),
        ),
        (
            "gate.py",
            (
                "pytest_hftk8s.slo",
                "pytest_hftk8s.report",
                "pytest_hftk8s.cluster.local",
                "pytest_hftk8s.cluster.kubernetes",
            ),
        ),
    ],
)
def test_sibling_concerns_do_not_import_each_other(layer: str, forbidden: tuple[str, ...]) -> None:
    for path in _files(layer):
        bad = {n for n in _imports(path) if n.startswith(forbidden)}
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}"


def test_plugin_layers_reach_backends_only_through_the_selector() -> None:
    # (chaos/ has its own per-backend drivers; this checks the plugin's layers.)
    for path in _files(
        "plugin.py", "runtime.py", "session.py", "options.py", "gate.py", "slo", "load", "report"
    ):
        bad = {
            n
            for n in _imports(path)
            if n.startswith(("pytest_hftk8s.cluster.local", "pytest_hftk8s.cluster.kubernetes"))
        }
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}"
