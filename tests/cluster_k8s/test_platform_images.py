"""Platform images: content-hash tags, the command lines per provider, and running them.

No Docker runs here: the commands are checked as argv lists, and the runner (and the CLI) run against
stand-in ``docker``/``kind``/``k3d`` executables on PATH that record their argv and can fail or hang.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from pytest_hftk8s.cluster.kubernetes import images as im
from pytest_hftk8s.errors import ClusterError, ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]
TAG = re.compile(r"^0\.1\.0-[0-9a-f]{12}$")


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> pathlib.Path:
    """A small source checkout: the real Dockerfiles and ignore files, stand-in sources."""
    root = tmp_path / "src"
    shutil.copytree(ROOT / "platform" / "docker", root / "platform" / "docker")
    for rel, text in {
        "constraints/ci.txt": "pip==26.3\n",
        "pyproject.toml": "[project]\nname = 'the plugin, not in any image'\n",
        "pytest_hftk8s/plugin.py": "x = 1\n",
        "platform/pyproject.toml": "[project]\nname = 'hftk8s-platform'\n",
        "platform/README.md": "readme\n",
        "platform/hft_platform/backend/app.py": "app = 1\n",
        "engine_cpp/src/book.cpp": "int main() {}\n",
        "docs/ARCHITECTURE.md": "not copied into any image\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _hashes(root: pathlib.Path) -> dict[str, str]:
    return {spec.repository: im.content_hash(root, spec) for spec in im.PLATFORM_IMAGES}


def test_references_carry_the_version_and_a_content_hash() -> None:
    refs = im.image_refs(ROOT)
    assert [r.repository for r in refs] == ["hftk8s/backend", "hftk8s/engine"]
    assert all(TAG.match(r.tag) for r in refs)
    assert refs[0].tag != refs[1].tag  # different Dockerfiles
    assert im.image_refs(ROOT) == refs  # deterministic
    pushed = im.image_refs(ROOT, registry="ghcr.io/acme/")
    assert pushed[0].reference == f"ghcr.io/acme/hftk8s/backend:{refs[0].tag}"


def test_the_real_dockerfiles_copy_what_the_hash_covers() -> None:
    for spec in im.PLATFORM_IMAGES:
        text = (ROOT / spec.dockerfile).read_text()
        assert im.copied_sources(text) == [
            "constraints/ci.txt",
            "engine_cpp",
            "platform/pyproject.toml",
            "platform/README.md",
            "platform/hft_platform",
            "constraints/ci.txt",
        ]
        assert (ROOT / f"{spec.dockerfile}.dockerignore").is_file()


def test_the_hash_follows_the_copied_sources_only(tree: pathlib.Path) -> None:
    before = _hashes(tree)
    assert _hashes(tree) == before

    (tree / "docs" / "ARCHITECTURE.md").write_text("changed, but no image copies it\n")
    (tree / "pytest_hftk8s" / "plugin.py").write_text("x = 2  # the plugin drives the cluster from outside\n")
    for junk in ("platform/hft_platform/__pycache__/app.cpython-311.pyc", "engine_cpp/build/CMakeCache.txt"):
        (tree / junk).parent.mkdir(parents=True, exist_ok=True)
        (tree / junk).write_text("local build products, dropped by the .dockerignore\n")
    (tree / "engine_cpp" / "python").mkdir(parents=True)
    (tree / "engine_cpp" / "python" / "_core.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    assert _hashes(tree) == before

    (tree / "engine_cpp" / "src" / "book.cpp").write_text("int main() { return 0; }\n")
    after = _hashes(tree)
    assert after["hftk8s/backend"] != before["hftk8s/backend"]
    assert after["hftk8s/engine"] != before["hftk8s/engine"]

    dockerfile = tree / "platform" / "docker" / "engine.Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# a comment changes the image's recipe\n")
    assert _hashes(tree)["hftk8s/engine"] != after["hftk8s/engine"]
    assert _hashes(tree)["hftk8s/backend"] == after["hftk8s/backend"]


def test_dockerignore_rules_as_docker_applies_them() -> None:
    rules = im.ignore_rules((ROOT / "platform" / "docker" / "backend.Dockerfile.dockerignore").read_text())
    assert not im.is_ignored("platform/hft_platform/backend/app.py", rules)
    assert not im.is_ignored("engine_cpp/src/book.cpp", rules)
    assert not im.is_ignored("platform/pyproject.toml", rules)
    assert not im.is_ignored("constraints/ci.txt", rules)
    assert im.is_ignored("pyproject.toml", rules)  # the plugin's: not in the images
    assert im.is_ignored("pytest_hftk8s/plugin.py", rules)
    assert im.is_ignored("platform/hft_platform/__pycache__/app.cpython-311.pyc", rules)
    assert im.is_ignored("engine_cpp/build/CMakeCache.txt", rules)
    assert im.is_ignored("build/cp311/engine.o", rules)  # allow-list: everything else stays out
    assert im.is_ignored(".git/HEAD", rules)
    assert im.is_ignored("platform/docker/backend.Dockerfile", rules)


@pytest.mark.parametrize(
    ("context", "provider", "cluster"),
    [
        ("kind-hft", "kind", "hft"),
        ("k3d-dev", "k3d", "dev"),
        ("minikube", "minikube", "minikube"),
        ("orbstack", "orbstack", ""),
        ("gke_acme_europe-west1_prod", None, ""),
        ("kind", None, ""),  # a context named just "kind" is no kind cluster's
    ],
)
def test_provider_and_cluster_from_the_context(context: str, provider: str | None, cluster: str) -> None:
    assert im.provider_of(context) == provider
    if provider is not None:
        assert im.cluster_of(context, provider) == cluster


def _argv(steps: list[im.Step]) -> list[list[str]]:
    return [list(s.argv) for s in steps]


def test_command_lines_per_provider(tree: pathlib.Path) -> None:
    refs = im.image_refs(tree)
    backend, engine = (r.reference for r in refs)
    builds = [
        ["docker", "build", "-f", f"{tree}/platform/docker/backend.Dockerfile", "-t", backend, str(tree)],
        ["docker", "build", "-f", f"{tree}/platform/docker/engine.Dockerfile", "-t", engine, str(tree)],
    ]
    assert _argv(im.plan(tree, refs, provider="kind", cluster="hft")) == [
        *builds,
        ["kind", "load", "docker-image", backend, engine, "--name", "hft"],
    ]
    assert _argv(im.plan(tree, refs, provider="k3d", cluster="dev")) == [
        *builds,
        ["k3d", "image", "import", backend, engine, "-c", "dev"],
    ]
    assert _argv(im.plan(tree, refs, provider="minikube", cluster="minikube")) == [
        *builds,
        ["minikube", "image", "load", backend, "-p", "minikube"],
        ["minikube", "image", "load", engine, "-p", "minikube"],
    ]
    assert _argv(im.plan(tree, refs, provider="orbstack", cluster="")) == builds  # shared Docker image store
    assert _argv(im.plan(tree, refs, provider="kind", cluster="hft", load=False)) == builds
    pushed = im.image_refs(tree, registry="localhost:5001")
    assert _argv(im.plan(tree, pushed, provider="kind", cluster="hft"))[2:] == [
        ["docker", "push", f"localhost:5001/{backend}"],
        ["docker", "push", f"localhost:5001/{engine}"],
    ]
    with pytest.raises(
        ConfigError, match="expected a provider among kind, k3d, minikube, orbstack, registry"
    ):
        im.provide_steps("docker-desktop", refs, cluster="")


# -- running them against stand-in executables ----------------------------------------------------

FAKE = """\
#!{python}
import json, os, sys, time
name = os.path.basename(sys.argv[0])
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
print(f"{{name}}: step 1/2", flush=True)
print(f"{{name}}: step 2/2", flush=True)
if os.environ.get("FAKE_HANG") == name:
    time.sleep(60)
if os.environ.get("FAKE_FAIL") == name:
    print("ERROR: failed to load image: cluster 'hft' not found", file=sys.stderr)
    sys.exit(17)
"""


@pytest.fixture
def fake_bin(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """``docker``, ``kind`` and ``k3d`` stand-ins first on PATH; they append their argv to FAKE_LOG."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("docker", "kind", "k3d"):
        exe = bin_dir / name
        exe.write_text(FAKE.format(python=sys.executable))
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.jsonl"))
    return bin_dir


def _calls(fake_bin: pathlib.Path) -> list[list[str]]:
    log = fake_bin.parent / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_provide_images_builds_and_loads_into_kind(fake_bin: pathlib.Path, tree: pathlib.Path) -> None:
    said: list[str] = []
    mapping = im.provide_images(
        context="kind-hft", mode="load", registry=None, progress=said.append, root=tree
    )
    refs = [r.reference for r in im.image_refs(tree)]
    assert mapping == {"hftk8s/backend": refs[0], "hftk8s/engine": refs[1]}
    assert _calls(fake_bin) == [
        ["docker", "build", "-f", f"{tree}/platform/docker/backend.Dockerfile", "-t", refs[0], str(tree)],
        ["docker", "build", "-f", f"{tree}/platform/docker/engine.Dockerfile", "-t", refs[1], str(tree)],
        ["kind", "load", "docker-image", *refs, "--name", "hft"],
    ]
    assert f"$ kind load docker-image {' '.join(refs)} --name hft" in said
    assert "docker: step 1/2" not in said  # the session prints commands, not their output


def test_skip_runs_nothing_and_build_only_builds(fake_bin: pathlib.Path, tree: pathlib.Path) -> None:
    skipped = im.provide_images(context="kind-hft", mode="skip", registry=None, progress=print, root=tree)
    assert _calls(fake_bin) == []
    assert set(skipped) == {"hftk8s/backend", "hftk8s/engine"}
    im.provide_images(context="orbstack", mode="build", registry=None, progress=print, root=tree)
    assert [c[:2] for c in _calls(fake_bin)] == [["docker", "build"], ["docker", "build"]]


def test_load_needs_a_provider_or_a_registry(fake_bin: pathlib.Path, tree: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="not a kind-\\*, k3d-\\*, minikube or orbstack context"):
        im.provide_images(context="gke_acme_prod", mode="load", registry=None, progress=print, root=tree)
    assert _calls(fake_bin) == []
    mapping = im.provide_images(
        context="gke_acme_prod", mode="load", registry="ghcr.io/acme", progress=print, root=tree
    )
    assert mapping["hftk8s/engine"].startswith("ghcr.io/acme/hftk8s/engine:0.1.0-")
    assert [c[:2] for c in _calls(fake_bin)][2:] == [["docker", "push"], ["docker", "push"]]


def test_a_failing_command_stops_with_its_output_tail(
    fake_bin: pathlib.Path, tree: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL", "kind")
    with pytest.raises(ClusterError) as failure:
        im.provide_images(context="kind-hft", mode="load", registry=None, progress=print, root=tree)
    message = str(failure.value)
    assert re.search(r"`kind load docker-image \S+ \S+ --name hft` exited 17 \(load into kind hft\)", message)
    assert "  | kind: step 2/2\n  | ERROR: failed to load image: cluster 'hft' not found" in message


def test_a_missing_tool_is_named_with_how_to_install_it(fake_bin: pathlib.Path, tree: pathlib.Path) -> None:
    (fake_bin / "kind").unlink()
    with pytest.raises(ClusterError, match="expected `kind` on PATH to load into kind hft; it is not there"):
        im.provide_images(context="kind-hft", mode="load", registry=None, progress=print, root=tree)
    (fake_bin / "docker").unlink()
    with pytest.raises(ClusterError, match=r"expected `docker` on PATH .* install Docker .*OrbStack"):
        im.provide_images(context="orbstack", mode="build", registry=None, progress=print, root=tree)


def test_a_hanging_command_is_stopped_at_its_bound(
    fake_bin: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_HANG", "docker")
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"did not finish within 1s \(build x\); it was stopped"):
        im.run_steps([im.Step(("docker", "build", "."), "build x", timeout=1.0)], echo=print)
    assert time.monotonic() - started < 4


def test_streamed_output_reaches_the_echo(fake_bin: pathlib.Path) -> None:
    said: list[str] = []
    im.run_steps(
        [im.Step(("k3d", "image", "import", "a:1", "-c", "dev"), "import")], echo=said.append, stream=True
    )
    assert said == ["$ k3d image import a:1 -c dev", "k3d: step 1/2", "k3d: step 2/2"]


# -- the CLI --------------------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_hftk8s", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


def test_cli_dry_run_prints_the_commands_and_runs_nothing(tree: pathlib.Path) -> None:
    done = _cli("images", "--context", "k3d-dev", "--source", str(tree), "--dry-run")
    assert done.returncode == 0, done.stderr
    refs = [r.reference for r in im.image_refs(tree)]
    assert done.stdout.splitlines()[:3] == [
        f"docker build -f {tree}/platform/docker/backend.Dockerfile -t {refs[0]} {tree}",
        f"docker build -f {tree}/platform/docker/engine.Dockerfile -t {refs[1]} {tree}",
        f"k3d image import {refs[0]} {refs[1]} -c dev",
    ]
    assert f"#   hftk8s/engine -> {refs[1]}" in done.stdout


def test_cli_runs_the_commands_and_streams_their_output(fake_bin: pathlib.Path, tree: pathlib.Path) -> None:
    done = _cli(
        "images", "--provider", "kind", "--cluster", "ci", "--source", str(tree), env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert "docker: step 2/2" in done.stdout
    assert _calls(fake_bin)[-1][:3] == ["kind", "load", "docker-image"]
    assert _calls(fake_bin)[-1][-2:] == ["--name", "ci"]


def test_cli_exit_codes(fake_bin: pathlib.Path, tree: pathlib.Path) -> None:
    failing = _cli(
        "images", "--provider", "kind", "--source", str(tree), env={**os.environ, "FAKE_FAIL": "kind"}
    )
    assert failing.returncode == 1
    assert "error: `kind load docker-image" in failing.stderr
    assert "exited 17" in failing.stderr
    usage = _cli("images", "--provider", "registry", "--source", str(tree))
    assert usage.returncode == 2
    assert "expected --registry host[:port][/path]" in usage.stderr
    unknown = _cli("images", "--context", "gke_acme_prod", "--source", str(tree))
    assert unknown.returncode == 2
    assert "expected --provider (kind, k3d, minikube, orbstack, registry)" in unknown.stderr
    assert _cli("images", "--provider", "podman").returncode == 2


def test_cli_help_names_both_commands() -> None:
    done = _cli("--help")
    assert done.returncode == 0
    assert "images" in done.stdout
    assert "preflight" in done.stdout
    assert textwrap.dedent(done.stdout).startswith("usage: python -m pytest_hftk8s")
