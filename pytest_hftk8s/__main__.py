"""``python -m pytest_hftk8s``: the platform images and the preflight, without a pytest session.

    python -m pytest_hftk8s images --provider kind|k3d|minikube|orbstack|registry
        [--context C] [--cluster NAME] [--registry R] [--build-only] [--dry-run] [--source DIR]
    python -m pytest_hftk8s preflight --context C [--namespace N] [--no-chaos] [--registry R]

``images`` prints every command, then runs it (output streamed); ``--dry-run`` only prints them.
``preflight`` prints the table a session prints before deploying. Exit status: 0 done (or every
prerequisite in place), 1 a command or a prerequisite failed, 2 bad usage. Wiring only: the work is
done by the kubernetes backend's ``images`` module and by the cluster's own preflight.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pytest_hftk8s.errors import ConfigError, HftError


def _parser() -> argparse.ArgumentParser:
    from pytest_hftk8s.cluster.kubernetes.images import PROVIDERS

    parser = argparse.ArgumentParser(prog="python -m pytest_hftk8s", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    images = sub.add_parser("images", help="build the platform images and make them available to a cluster")
    images.add_argument("--provider", choices=PROVIDERS, help="default: from --context (kind-*, k3d-*, ...)")
    images.add_argument("--context", help="the kube context (names the kind/k3d cluster or minikube profile)")
    images.add_argument(
        "--cluster", help="the kind/k3d cluster or minikube profile (default: from --context)"
    )
    images.add_argument("--registry", help="push to this registry (host[:port][/path]) instead of loading")
    images.add_argument("--build-only", action="store_true", help="build, but neither load nor push")
    images.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    images.add_argument("--source", type=Path, help="the source checkout (default: found from here)")
    pre = sub.add_parser("preflight", help="check a kube context's prerequisites and print the table")
    pre.add_argument("--context", required=True, help="the kube context ($KUBECONFIG or ~/.kube/config)")
    pre.add_argument("--namespace", default="hft", help="the namespace the session would deploy to")
    pre.add_argument("--no-chaos", action="store_true", help="the session will not inject chaos")
    pre.add_argument("--registry", help="the images are pushed there (they are then pulled, not checked)")
    return parser


def images(args: argparse.Namespace) -> int:
    from pytest_hftk8s.cluster.kubernetes import images as im

    provider = args.provider or ("registry" if args.registry else im.provider_of(args.context or ""))
    if provider is None:
        raise ConfigError(
            f"expected --provider ({', '.join(im.PROVIDERS)}); context {args.context!r} does not name one"
        )
    if provider == "registry" and not args.registry:
        raise ConfigError("--provider registry pushes the images: expected --registry host[:port][/path]")
    root = args.source or im.source_root()
    if root is None or not (root / "platform" / "docker").is_dir():
        raise ConfigError(
            f"expected a source checkout with platform/docker/ and engine_cpp/ (at {root or 'or above here'}); "
            f"run from a clone of the repository or pass --source DIR"
        )
    refs = im.image_refs(root, registry=args.registry)
    cluster = args.cluster or im.cluster_of(args.context, provider)
    steps = im.plan(root, refs, provider=provider, cluster=cluster, load=not args.build_only)
    if args.dry_run:
        for step in steps:
            print(step)
    else:
        im.run_steps(steps, echo=lambda line: print(line, flush=True), stream=True)
    if provider == "orbstack" and not args.build_only:
        print("# OrbStack's Kubernetes uses the Docker image store: the built images are on its node")
    print("# the manifests' images for this build (--hft-images=skip uses them):")
    for ref in refs:
        print(f"#   {ref.repository} -> {ref.reference}")
    return 0


def preflight(args: argparse.Namespace) -> int:
    from pytest_hftk8s.cluster.select import make_cluster, platform_images
    from pytest_hftk8s.report.preflight import failed, format_table

    expected = platform_images(args.context, mode="skip", registry=args.registry, progress=print)
    cluster = make_cluster(args.context, namespace=args.namespace, state_dir=Path(tempfile.gettempdir()))
    try:
        rows = cluster.preflight(images=tuple(expected.values()), chaos=not args.no_chaos)
    finally:
        cluster.close()
    print(format_table(rows, title=f"preflight of {args.context} (namespace {args.namespace})"))
    return 1 if failed(rows) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return images(args) if args.command == "images" else preflight(args)
    except ConfigError as e:
        parser.error(str(e))  # exits 2
    except HftError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
