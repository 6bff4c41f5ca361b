"""The platform images on a kube context: their references, and the commands that provide them.

``hftk8s/backend`` and ``hftk8s/engine`` are tagged ``<package version>-<hash12>``, the hash taken
over what goes into each image: its Dockerfile, its ``.dockerignore`` and every file its ``COPY``
lines bring from the build context (the source checkout, minus what the ignore file drops). The same
sources give the same tag, so a node that already holds a tag holds the right code.

Providers get them differently: kind ``kind load docker-image``, k3d ``k3d image import``, minikube
``minikube image load``, OrbStack nothing (its Kubernetes uses the Docker image store, so the build is
enough), and a registry ``docker push``. The references, hashes and argv lists are pure functions;
:func:`run_steps` runs the commands, bounded, and fails with the output's tail. Nothing here talks to
the Kubernetes API or knows the manifests.
"""

from __future__ import annotations

import collections
import hashlib
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_hftk8s import __version__
from pytest_hftk8s.errors import ClusterError, ConfigError

__all__ = [
    "PLATFORM_IMAGES",
    "PROVIDERS",
    "ImageRef",
    "ImageSpec",
    "Step",
    "cluster_of",
    "content_hash",
    "image_refs",
    "plan",
    "provide_images",
    "provider_of",
    "run_steps",
    "source_root",
]

#: Where the images can be made available (``registry``: pushed; the nodes pull them).
PROVIDERS = ("kind", "k3d", "minikube", "orbstack", "registry")
BUILD_TIMEOUT = 1800.0  # compiling the engine in a cold builder takes minutes
PROVIDE_TIMEOUT = 600.0
_DEFAULT_CLUSTER = {"kind": "kind", "k3d": "k3s-default", "minikube": "minikube"}
_INSTALL = {
    "docker": "install Docker (Docker Engine, Docker Desktop, or OrbStack on macOS) and check `docker version`",
    "kind": "install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
    "k3d": "install k3d: https://k3d.io/#installation",
    "minikube": "install minikube: https://minikube.sigs.k8s.io/docs/start/",
}


@dataclass(frozen=True)
class ImageSpec:
    """One platform image: its repository (as the manifests name it) and its Dockerfile."""

    repository: str
    dockerfile: str  # relative to the source root, which is also the build context


PLATFORM_IMAGES = (
    ImageSpec("hftk8s/backend", "platform/docker/backend.Dockerfile"),
    ImageSpec("hftk8s/engine", "platform/docker/engine.Dockerfile"),
)


@dataclass(frozen=True)
class ImageRef:
    """A content-addressed reference: ``[registry/]repository:tag``."""

    repository: str
    tag: str
    registry: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}"


@dataclass(frozen=True)
class Step:
    """One command line, what it is for, and how long it may take."""

    argv: tuple[str, ...]
    what: str
    timeout: float = PROVIDE_TIMEOUT

    def __str__(self) -> str:
        return " ".join(self.argv)


# -- where the sources are, and what goes into an image ------------------------------------------


def source_root(start: Path | None = None) -> Path | None:
    """The source checkout the images are built from (holds ``platform/docker`` and ``engine_cpp``).

    Looked for above ``start`` (default: this package, which is the checkout's in an editable
    install), then above the working directory; None from an installed wheel outside a checkout.
    """
    starts = [start] if start is not None else [Path(__file__).resolve(), Path.cwd().resolve()]
    for origin in starts:
        for candidate in (origin, *origin.parents):
            if (candidate / "platform" / "docker").is_dir() and (candidate / "engine_cpp").is_dir():
                return candidate
    return None


def copied_sources(dockerfile_text: str) -> list[str]:
    """The build-context paths the Dockerfile's ``COPY``/``ADD`` lines bring in (not ``--from=``)."""
    joined = re.sub(r"\\\n", " ", dockerfile_text)
    sources: list[str] = []
    for line in joined.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]) or len(args) < 2:
            continue
        sources += [a.strip("\"'[],").removeprefix("./") for a in args[:-1]]
    return sources


def _pattern(text: str) -> re.Pattern[str]:
    """A ``.dockerignore`` glob as a regex: ``**`` any depth, ``*``/``?`` within one path segment."""
    out, i = "", 0
    while i < len(text):
        if text.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif text.startswith("**", i):
            out, i = out + ".*", i + 2
        elif text[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif text[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(text[i]), i + 1
    return re.compile(out + r"\Z")


def ignore_rules(text: str) -> list[tuple[re.Pattern[str], bool]]:
    """``(pattern, excludes)`` per line of a ``.dockerignore``; ``!`` lines re-include."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append((_pattern(pattern), not negated))
    return rules


def is_ignored(path: str, rules: Sequence[tuple[re.Pattern[str], bool]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern, excludes in rules:
        if any(pattern.match(p) for p in prefixes):
            ignored = excludes
    return ignored


def _ignore_file(root: Path, spec: ImageSpec) -> Path:
    specific = root / f"{spec.dockerfile}.dockerignore"  # BuildKit prefers <Dockerfile>.dockerignore
    return specific if specific.is_file() else root / ".dockerignore"


def content_hash(root: Path, spec: ImageSpec) -> str:
    """12 hex digits of SHA-256 over the Dockerfile, its ignore file and every file it copies."""
    dockerfile = root / spec.dockerfile
    try:
        text = dockerfile.read_text()
    except OSError as e:
        raise ConfigError(f"expected the Dockerfile {dockerfile} in the source checkout; {e}") from e
    ignore = _ignore_file(root, spec)
    ignore_text = ignore.read_text() if ignore.is_file() else ""
    rules = ignore_rules(ignore_text)
    digest = hashlib.sha256()
    for label, data in (("Dockerfile", text.encode()), ("dockerignore", ignore_text.encode())):
        digest.update(f"{label}\0{len(data)}\0".encode() + data)
    files: set[str] = set()
    for source in copied_sources(text):
        base = root / source
        if not base.exists():
            raise ConfigError(f"{spec.dockerfile} copies {source!r}, which is not in {root}")
        found = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
        files.update(p.relative_to(root).as_posix() for p in found)
    for rel in sorted(f for f in files if not is_ignored(f, rules)):
        data = (root / rel).read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()[:12]


def image_refs(root: Path, *, registry: str | None = None, version: str = __version__) -> list[ImageRef]:
    """The references of the platform images built from ``root`` (under ``registry`` if given)."""
    prefix = registry.rstrip("/") if registry else None
    return [
        ImageRef(spec.repository, f"{version}-{content_hash(root, spec)}", prefix) for spec in PLATFORM_IMAGES
    ]


# -- providers and their command lines ------------------------------------------------------------


def provider_of(context: str) -> str | None:
    """The laptop cluster behind a kube context name (kind-*, k3d-*, minikube, orbstack), else None."""
    if context.startswith("kind-"):
        return "kind"
    if context.startswith("k3d-"):
        return "k3d"
    if context in ("minikube", "orbstack"):
        return context
    return None


def cluster_of(context: str | None, provider: str) -> str:
    """The provider's cluster (kind, k3d) or profile (minikube) name behind ``context``."""
    if context and provider in ("kind", "k3d") and context.startswith(f"{provider}-"):
        return context.removeprefix(f"{provider}-")
    if context and provider == "minikube":
        return context
    return _DEFAULT_CLUSTER.get(provider, "")


def build_step(root: Path, spec: ImageSpec, ref: ImageRef) -> Step:
    argv = ("docker", "build", "-f", str(root / spec.dockerfile), "-t", ref.reference, str(root))
    return Step(argv, f"build {ref.reference}", BUILD_TIMEOUT)


def provide_steps(provider: str, refs: Sequence[ImageRef], *, cluster: str) -> list[Step]:
    """What makes built images available to ``provider`` (nothing for OrbStack's shared store)."""
    names = tuple(r.reference for r in refs)
    if provider == "kind":
        return [
            Step(("kind", "load", "docker-image", *names, "--name", cluster), f"load into kind {cluster}")
        ]
    if provider == "k3d":
        return [Step(("k3d", "image", "import", *names, "-c", cluster), f"import into k3d {cluster}")]
    if provider == "minikube":
        return [
            Step(("minikube", "image", "load", n, "-p", cluster), f"load {n} into minikube") for n in names
        ]
    if provider == "registry":
        return [Step(("docker", "push", n), f"push {n}") for n in names]
    if provider == "orbstack":
        return []
    raise ConfigError(f"expected a provider among {', '.join(PROVIDERS)}; got {provider!r}")


def plan(
    root: Path, refs: Sequence[ImageRef], *, provider: str, cluster: str, load: bool = True
) -> list[Step]:
    """Build every image, then (``load``) make them available: pushed when they name a registry."""
    by_repo = {spec.repository: spec for spec in PLATFORM_IMAGES}
    steps = [build_step(root, by_repo[r.repository], r) for r in refs]
    if load:
        pushed = any(r.registry for r in refs)
        steps += provide_steps("registry" if pushed else provider, refs, cluster=cluster)
    return steps


# -- running them ---------------------------------------------------------------------------------


def run_steps(
    steps: Iterable[Step],
    *,
    echo: Callable[[str], None],
    stream: bool = False,
    which: Callable[[str], str | None] = shutil.which,
) -> None:
    """Run each step in order (``stream``: echo every output line); stop at the first failure."""
    for step in steps:
        exe = which(step.argv[0])
        if exe is None:
            raise ClusterError(
                f"expected `{step.argv[0]}` on PATH to {step.what}; it is not there. "
                f"{_INSTALL.get(step.argv[0], 'install it')}, then run again."
            )
        echo(f"$ {step}")
        _run_one(step, exe, echo=echo if stream else None)


def _run_one(step: Step, exe: str, *, echo: Callable[[str], None] | None) -> None:
    tail: collections.deque[str] = collections.deque(maxlen=25)
    try:
        proc = subprocess.Popen(
            [exe, *step.argv[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except OSError as e:
        raise ClusterError(f"could not start `{step}` to {step.what}: {e}") from e

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if echo is not None:
                echo(line.rstrip("\n"))

    reader = threading.Thread(target=pump, name=f"output of {step.argv[0]}", daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=step.timeout)
    except subprocess.TimeoutExpired as e:
        proc.kill()
        proc.wait(timeout=10)
        reader.join(timeout=2)
        raise ClusterError(
            f"`{step}` did not finish within {step.timeout:.0f}s ({step.what}); it was stopped. "
            f"Last output:\n{_tail(tail)}"
        ) from e
    finally:
        reader.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    if code != 0:
        raise ClusterError(
            f"`{step}` exited {code} ({step.what}); expected 0. Last output:\n{_tail(tail)}\n"
            f"Fix what it says and run again; the exact command is above."
        )


def _tail(lines: Iterable[str]) -> str:
    text = "\n".join(f"  | {line}" for line in lines)
    return text or "  | (no output)"


def provide_images(
    *,
    context: str,
    mode: str,
    registry: str | None,
    progress: Callable[[str], None],
    root: Path | None = None,
) -> dict[str, str]:
    """The session's ``--hft-images``: repository -> reference the manifests run (kustomize ``images:``).

    ``skip`` runs nothing (the nodes must hold the references, which the preflight checks);
    ``build`` builds them; ``load`` builds and loads them into the context's provider, or pushes
    them to ``registry``. Outside a source checkout ``skip`` keeps the manifests' own tags.
    """
    found = root or source_root()
    if found is None:
        if mode == "skip":
            progress("images: no source checkout here, so the manifests' own image tags are deployed")
            return {}
        raise ConfigError(
            f"--hft-images={mode} builds the platform images from a source checkout (platform/docker/, "
            f"engine_cpp/); found none above {Path(__file__).parent} or the working directory. Run from a "
            f"clone of the repository, or build them there: python -m pytest_hftk8s images --provider <p>."
        )
    refs = image_refs(found, registry=registry)
    mapping = {r.repository: r.reference for r in refs}
    if mode == "skip":
        return mapping
    provider = provider_of(context)
    if mode == "load" and provider is None and not registry:
        raise ConfigError(
            f"--hft-images=load needs a provider to load into, and context {context!r} is not a kind-*, "
            f"k3d-*, minikube or orbstack context. Push the images to a registry the cluster pulls from "
            f"with --hft-registry <host/path>, or build and load them yourself and use --hft-images=skip."
        )
    steps = plan(
        found,
        refs,
        provider=provider or "registry",
        cluster=cluster_of(context, provider or ""),
        load=mode == "load",
    )
    progress(f"images: {mode} {', '.join(mapping.values())}")
    run_steps(steps, echo=progress)
    return mapping
