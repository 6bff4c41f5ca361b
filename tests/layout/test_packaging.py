"""The distributions (docs/ARCHITECTURE.md, "Distributions"), checked.

Fast: the three pyproject.toml files agree on one version, declare ranges (not pins), keep the server
stack and the C++ build out of the plugin, and constraints/ci.txt pins every declared dependency
inside its range; the image references ``manifests.render(images=...)`` gives kustomize.

Slow (they build the plugin's wheel and install it into a new venv): the wheel is pure, carries the
manifests and chaos templates and nothing of the platform; installed, it renders an overlay from its
own files (also zipped on ``sys.path``), loads without the platform, and an unrelated pytest run
gets no PytestAssertRewriteWarning. The venv sees the dependencies of this interpreter through a
plain path entry, so no network is needed and none of this environment's editable-install hooks
(.pth files) run there: what the venv imports from ``pytest_hftk8s`` is the wheel's.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import pathlib
import re
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pytest_hftk8s import manifests
from pytest_hftk8s.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYPROJECTS = {
    "pytest-hftk8s": ROOT / "pyproject.toml",
    "hftk8s-platform": ROOT / "platform" / "pyproject.toml",
    "hftk8s-engine": ROOT / "engine_cpp" / "pyproject.toml",
}
# numpy is not among them: the report's plots and the comparisons' statistics need it (and
# matplotlib and scipy bring it anyway), so the plugin declares it.
SERVER_STACK = {"fastapi", "uvicorn", "httptools", "redis", "hiredis", "orjson", "prometheus-client",
                "hftk8s-platform", "hftk8s-engine"}  # fmt: skip
COMPILED = (".so", ".pyd", ".dylib", ".dll", ".c", ".cpp")
IMAGES = {
    "hftk8s/backend": "registry.test:5000/hftk8s/backend:0.1.0-abc123",
    "hftk8s/engine": "hftk8s/engine:0.1.0-def456",
}


def _project(name: str) -> dict:
    return tomllib.loads(PYPROJECTS[name].read_text())


def _requirements(name: str) -> list[Requirement]:
    data = _project(name)
    raw = [*data["project"].get("dependencies", []), *data["build-system"]["requires"]]
    for extra in data["project"].get("optional-dependencies", {}).values():
        raw += extra
    return [Requirement(r) for r in raw]


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints" / "ci.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints/ci.txt: expected name==version, saw {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def test_the_distributions_share_one_version_and_pin_each_other_to_it() -> None:
    versions = {name: _project(name)["project"]["version"] for name in PYPROJECTS}
    assert len(set(versions.values())) == 1, versions
    version = versions["pytest-hftk8s"]
    assert _project("pytest-hftk8s")["project"]["optional-dependencies"]["local"] == [
        f"hftk8s-platform=={version}"
    ]
    assert f"hftk8s-engine=={version}" in _project("hftk8s-platform")["project"]["dependencies"]


def test_runtime_dependencies_are_ranges_not_pins() -> None:
    ours = set(PYPROJECTS)
    for name in PYPROJECTS:
        for req in _requirements(name):
            if canonicalize_name(req.name) in ours:
                continue  # the repository's own distributions move together (test above)
            pinned = [s for s in req.specifier if s.operator in ("==", "===")]
            assert not pinned, f"{PYPROJECTS[name]}: {req} pins a version; pins go in constraints/ci.txt"


def test_the_plugin_pulls_in_no_server_stack_and_compiles_nothing() -> None:
    project = _project("pytest-hftk8s")
    runtime = {canonicalize_name(Requirement(r).name) for r in project["project"]["dependencies"]}
    assert not runtime & SERVER_STACK, runtime & SERVER_STACK
    backend = {canonicalize_name(Requirement(r).name) for r in project["build-system"]["requires"]}
    assert backend == {"hatchling"}, backend
    assert "scripts" not in project["project"], "hft-backend/hft-engine belong to hftk8s-platform"
    assert set(_project("hftk8s-platform")["project"]["scripts"]) == {"hft-backend", "hft-engine"}


def test_every_module_the_plugin_imports_comes_from_a_declared_dependency() -> None:
    # A module that arrives only through another package's dependencies (urllib3 through kubernetes)
    # breaks the day that package drops it; hft_platform/hft_engine must not be imported at all.
    # The emulated cluster (cluster/emulated, imported only for --hft-cluster=emulated) may use its
    # extra's distributions as well; everything else only the plain dependencies.
    project = _project("pytest-hftk8s")["project"]
    plain = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    emulated = plain | {
        canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["emulated"]
    }
    undeclared = {}
    providers = importlib.metadata.packages_distributions()
    for path in (ROOT / "pytest_hftk8s").rglob("*.py"):
        declared = emulated if "emulated" in path.relative_to(ROOT).parts else plain
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        third_party = imported - set(sys.stdlib_module_names) - {"pytest_hftk8s", "_pytest"}
        undeclared |= {
            module: providers.get(module, ["(not installed)"])
            for module in sorted(third_party)
            if not {canonicalize_name(d) for d in providers.get(module, [])} & declared
        }
    assert not undeclared, f"pytest_hftk8s imports these without declaring their distribution: {undeclared}"


def test_constraints_pin_every_declared_dependency_inside_its_range() -> None:
    pins = _constraints()
    ours = set(PYPROJECTS)
    for name in PYPROJECTS:
        for req in _requirements(name):
            key = canonicalize_name(req.name)
            if key in ours:
                continue
            assert key in pins, f"{req} ({PYPROJECTS[name]}) has no exact version in constraints/ci.txt"
            assert req.specifier.contains(pins[key], prereleases=True), (
                f"constraints/ci.txt pins {key}=={pins[key]}, outside {req} declared in {PYPROJECTS[name]}"
            )


def test_ci_installs_all_three_distributions_with_the_constraints() -> None:
    lines = (ROOT / ".ci" / "install").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "-e ./engine_cpp" in line)
    for part in (
        "-c constraints/ci.txt",
        "--build-constraint constraints/ci.txt",
        "-e ./platform",
        "-e '.[test]'",
    ):
        assert part in lines[at], f".ci/install: expected {part!r} in {lines[at]!r}"
    # Over the earlier one-distribution layout, its uninstall would delete hftk8s-engine's compiled files.
    uninstall = [i for i, line in enumerate(lines) if "pip uninstall" in line and "pytest-hftk8s" in line]
    assert uninstall, ".ci/install: expected our distributions uninstalled before the install"
    assert uninstall[0] < at


def test_an_editable_install_reads_the_checkout() -> None:
    assert manifests.manifests_dir() == ROOT / "manifests"
    assert manifests.chaos_dir() == ROOT / "chaos"
    with pytest.raises(ConfigError, match="overlays/ inside"):
        manifests.manifests_dir(ROOT / "chaos")


def test_render_sets_the_image_references_through_kustomize() -> None:
    plain = manifests.render("local")
    objects = manifests.render("local", images=IMAGES)
    assert len(objects) == len(plain)
    used = set(manifests._container_images(objects))
    assert set(IMAGES.values()) <= used, used
    assert not {"hftk8s/backend:0.1.0", "hftk8s/engine:0.1.0"} & used, used


def test_render_refuses_an_image_no_container_uses() -> None:
    with pytest.raises(ConfigError, match="no container uses it"):
        manifests.render("local", images={"hftk8s/backnd": "hftk8s/backnd:1"})


@pytest.mark.parametrize(
    ("reference", "entry"),
    [
        (
            "reg.test:5000/hftk8s/backend:0.1.0-ab",
            {"newName": "reg.test:5000/hftk8s/backend", "newTag": "0.1.0-ab"},
        ),
        ("hftk8s/backend@sha256:" + "0" * 64, {"newName": "hftk8s/backend", "digest": "sha256:" + "0" * 64}),
        ("r/b:t@sha256:" + "1" * 64, {"newName": "r/b", "newTag": "t", "digest": "sha256:" + "1" * 64}),
    ],
)
def test_image_references_become_kustomize_entries(reference: str, entry: dict[str, str]) -> None:
    assert manifests.image_entry("hftk8s/backend", reference) == {"name": "hftk8s/backend", **entry}


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("hftk8s/backend", "reg.test:5000/hftk8s/backend"),
        ("hftk8s/backend:0.1.0", "x:1"),
        ("hftk8s/backend", "x@md5:1"),
    ],
)
def test_incomplete_image_references_are_refused(name: str, reference: str) -> None:
    with pytest.raises(ConfigError, match="expected"):
        manifests.image_entry(name, reference)


# -- the built wheel ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("wheel")
    argv = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        str(out),
        str(ROOT),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    (built,) = out.glob("pytest_hftk8s-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A new venv with only the plugin's wheel installed; this interpreter's packages on a path entry."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True, timeout=120)
    python = home / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    host = dict.fromkeys(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    (pathlib.Path(purelib) / "_host_packages.pth").write_text("\n".join(host) + "\n")
    argv = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "--no-deps",
        "--no-index",
        str(wheel),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return home


def _run(
    venv: pathlib.Path, cwd: pathlib.Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HFT_", "PYTHON"))}
    return subprocess.run(
        [str(venv / "bin" / "python"), *args], capture_output=True, text=True, cwd=cwd,
        env={**clean, **(env or {})}, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_the_wheel_is_pure_and_carries_manifests_and_chaos(wheel: pathlib.Path) -> None:
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = Parser().parsestr(
            zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        )
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    for top in ("manifests", "chaos"):
        shipped = {
            f"pytest_hftk8s/_data/{p.relative_to(ROOT).as_posix()}"
            for p in (ROOT / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        assert shipped, f"{top}/ is empty"
        assert shipped <= names, sorted(shipped - names)
    assert not [
        n for n in names if n.startswith(("hft_platform/", "hft_engine/", "platform/", "engine_cpp/"))
    ]
    assert not [n for n in names if n.endswith(COMPILED)]
    assert re.search(r"^hftk8s = pytest_hftk8s\.plugin$", entry_points, re.M), entry_points
    assert "console_scripts" not in entry_points
    unconditional = {
        canonicalize_name(Requirement(r).name)
        for r in meta.get_all("Requires-Dist") or []
        if "extra ==" not in r
    }
    assert unconditional, "the wheel declares no dependencies"
    assert not unconditional & SERVER_STACK, unconditional


@pytest.mark.slow
def test_the_installed_wheel_renders_from_its_own_data(venv: pathlib.Path, tmp_path: pathlib.Path) -> None:
    code = (
        "import json, pytest_hftk8s; from pytest_hftk8s import manifests;"
        f"objs = manifests.render('local', images={IMAGES!r});"
        "print(json.dumps([pytest_hftk8s.__file__, str(manifests.manifests_dir()), str(manifests.chaos_dir()),"
        " sorted(set(manifests._container_images(objs)))]))"
    )
    done = _run(venv, tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr[-3000:]
    plugin, data, chaos, images = __import__("json").loads(done.stdout)
    assert pathlib.Path(plugin).is_relative_to(venv), plugin
    assert pathlib.Path(data).is_relative_to(venv), data
    assert data.endswith("pytest_hftk8s/_data/manifests"), data
    assert pathlib.Path(chaos).is_relative_to(venv), chaos
    assert pathlib.Path(chaos, "crds").is_dir(), chaos
    assert set(IMAGES.values()) <= set(images), images


@pytest.mark.slow
def test_the_wheel_zipped_on_sys_path_renders_from_a_copy_removed_at_exit(
    venv: pathlib.Path, wheel: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    code = (
        "import pytest_hftk8s; from pytest_hftk8s import manifests;"
        "print(pytest_hftk8s.__file__); print(manifests.manifests_dir());"
        "print(len(manifests.render('scale4')))"
    )
    done = _run(venv, tmp_path, "-c", code, env={"PYTHONPATH": str(wheel)})
    assert done.returncode == 0, done.stderr[-3000:]
    plugin, data, count = done.stdout.split()
    assert plugin.startswith(str(wheel)), plugin
    assert not data.startswith(str(wheel)), data
    assert int(count) > 0
    assert not pathlib.Path(data).exists(), f"{data}: the extracted copy outlived the process"


@pytest.mark.slow
def test_the_plugin_loads_without_the_platform(venv: pathlib.Path, tmp_path: pathlib.Path) -> None:
    # hft_engine may show up as a namespace package here: an editable scikit-build-core install puts
    # its compiled _core into site-packages. The platform itself, hft_platform, must not be there.
    code = (
        "import importlib.util, sys, pytest_hftk8s.plugin;"
        "print(importlib.util.find_spec('hft_platform'));"
        "print([m for m in ('hft_platform', 'hft_engine', 'fastapi', 'uvicorn', 'numpy', 'asyncpg', 'uvloop',"
        " 'kubernetes') if m in sys.modules])"
    )
    done = _run(venv, tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["None", "[]"], (
        f"(hft_platform spec, imported at plugin load): {done.stdout}"
    )
    helped = _run(venv, tmp_path, "-m", "pytest", "--help")
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "--hft-cluster" in helped.stdout


@pytest.mark.slow
def test_an_unrelated_pytest_run_gets_no_assert_rewrite_warning(
    venv: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "test_unrelated.py").write_text(
        "def test_the_installed_plugin_is_loaded(request):\n"
        "    plugin = request.config.pluginmanager.get_plugin('hftk8s')\n"
        f"    assert plugin is not None and plugin.__file__.startswith({str(venv)!r}), plugin\n"
    )
    done = _run(
        venv,
        tmp_path,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-W",
        "error::pytest.PytestAssertRewriteWarning",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout, done.stdout[-3000:]
    assert "PytestAssertRewriteWarning" not in done.stdout + done.stderr


@pytest.mark.slow
def test_this_environments_install_gets_no_assert_rewrite_warning(tmp_path: pathlib.Path) -> None:
    # The editable install of the checkout (bash .ci/install): a .pth path line, no import hook, so
    # pytest can still rewrite the plugin's asserts.
    (tmp_path / "test_unrelated.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-W",
        "error::pytest.PytestAssertRewriteWarning",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout, done.stdout[-3000:]


KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: kind-kind
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: kind-kind
  user: {token: not-a-token}
contexts:
- name: kind-kind
  context: {cluster: kind-kind, user: kind-kind}
current-context: kind-kind
"""


@pytest.mark.slow
def test_preflight_of_a_kube_context_runs_from_the_wheel_alone(
    venv: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    # The context's API server is a closed loopback port: preflight must say so, quickly and cleanly.
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    done = _run(
        venv, tmp_path, "-m", "pytest", "-p", "no:cacheprovider", "--hft-cluster=kind", "--hft-preflight",
        env={"KUBECONFIG": str(tmp_path / "kubeconfig")},
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode not in (0, 3, 4), out[-4000:]  # 3: internal error, 4: usage error
    assert "kind-kind" in out, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    assert "INTERNALERROR" not in out, out[-4000:]


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="the local cluster's preflight runs as root")
def test_the_local_cluster_without_the_platform_says_what_to_install(
    venv: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    done = _run(
        venv, tmp_path, "-m", "pytest", "-p", "no:cacheprovider", "--hft-cluster=local", "--hft-preflight"
    )
    out = done.stdout + done.stderr
    assert done.returncode not in (0, 3, 4), out[-4000:]
    assert re.search(r"platform packages\s+FAIL\s+hft_platform", out), out[-4000:]
    assert "INTERNALERROR" not in out, out[-4000:]
