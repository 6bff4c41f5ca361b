"""``python -m pytest_hftk8s.cluster.local``: deploy a profile on the local cluster by hand, or sweep.

Its job: a developer's front door to the local backend without pytest - ``up`` renders an overlay,
deploys it, prints each pod's progress and the deploy-to-ready time, then holds it until Ctrl-C (or
tears it down at once with ``--no-hold``); ``sweep`` cleans up after killed runs. It must not
implement anything the plugin relies on.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from pytest_hftk8s.cluster.local import LocalCluster, sweep
from pytest_hftk8s.credentials import new_password, with_db_secret
from pytest_hftk8s.manifests import render

DEFAULT_STATE_DIR = Path("/tmp/hftk8s-state")


def _up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()

    def progress(message: str) -> None:
        print(f"{time.monotonic() - t0:7.2f}s  {message}", flush=True)

    objects = with_db_secret(render(args.profile), password=new_password(), secret_name=None)
    rendered = time.monotonic() - t0
    cluster = LocalCluster(namespace=args.namespace, state_dir=args.state_dir, progress=progress)
    try:
        for warning in cluster.warnings:
            progress(f"WARNING: {warning}")
        applied = time.monotonic()
        cluster.apply(objects)
        deadline = applied + args.timeout
        while time.monotonic() < deadline and not all(w.is_available for w in cluster.workloads()):
            time.sleep(0.02)
        ready = all(w.is_available for w in cluster.workloads())
        result = {
            "profile": args.profile,
            "ready": ready,
            "render_seconds": round(rendered, 3),
            "apply_to_ready_seconds": round(time.monotonic() - applied, 3),
            "start_to_ready_seconds": round(time.monotonic() - t0, 3),
            "pods": {p.name: {"ip": p.ip, "ready": p.ready} for p in cluster.pods()},
        }
        print(json.dumps(result, indent=1), flush=True)
        if not ready:
            for pod in cluster.pods():
                if not pod.ready:
                    print(
                        f"--- {pod.name}: {pod.containers}\n{cluster.pod_logs(pod.name, tail=20)}",
                        file=sys.stderr,
                    )
            return 1
        if args.hold:
            prom = cluster.service_address("prometheus", "web")
            nginx = cluster.service_address("nginx", "http")
            progress(
                f"nginx {nginx.url}  prometheus {prom.url}  metrics http://{cluster.exporter.address}/metrics"
            )
            progress("holding; Ctrl-C tears it down")
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            while True:
                time.sleep(3600)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.delete_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_hftk8s.cluster.local", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="deploy a profile, report deploy-to-ready time, hold until Ctrl-C")
    up.add_argument("--profile", default="local")
    up.add_argument("--namespace", default="hft")
    up.add_argument("--timeout", type=float, default=60.0)
    up.add_argument("--no-hold", dest="hold", action="store_false")
    sub.add_parser("sweep", help="clean up after runs that were killed outright")
    args = parser.parse_args(argv)
    if args.command == "sweep":
        for line in sweep(args.state_dir):
            print(line)
        return 0
    return _up(args)


if __name__ == "__main__":
    raise SystemExit(main())
