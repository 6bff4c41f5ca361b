"""The local cluster's preflight: what this machine must have before the platform can run on it.

Its job: one :class:`~pytest_hftk8s.results.PreflightCheck` row per prerequisite of the local
backend, each saying what was found and what to do - cgroups (v2 or v1) with the cpu and memory
controllers reaching the cgroups it creates, root and the ``postgres`` user, the util-linux tools a
pod is started with, the server binaries the image table (:mod:`.images`) runs, stress-ng when chaos
may be injected, and the platform's Python packages. It only reads: no file is written, no process
started, so it is bounded by a few stat calls. It must not decide what a failed row means for the
session (the orchestration does).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
from collections.abc import Sequence
from pathlib import Path

from pytest_hftk8s.cluster.local import cgroups, images
from pytest_hftk8s.cluster.local.runner import UNSHARE
from pytest_hftk8s.results import PreflightCheck

Mounts = list[tuple[str, str, set[str]]]

#: The server binaries the image table runs (images.py), with the Debian package that installs each.
NGINX = Path("/usr/sbin/nginx")
PROMETHEUS = Path("/usr/bin/prometheus")
POSTGRES_USER = "postgres"  # the user pg_entrypoint drops to: PostgreSQL refuses to run as root
PG_ROOT = Path("/usr/lib/postgresql")
#: The tools a container is started with (runner.py) besides unshare: mounts, hostname, drop to a user.
POD_TOOLS = ("nsenter", "mount", "hostname", "setpriv")
#: The Python packages the platform images run as: the backend/engine services and the compiled engine.
PLATFORM_PACKAGES = ("hft_platform", "hft_engine")
PLATFORM_ACTION = (
    "pip install 'pytest-hftk8s[local]'; from a checkout: pip install -e ./engine_cpp -e ./platform "
    "(`bash .ci/install` installs everything)"
)


def checks(
    *, images: Sequence[str] = (), chaos: bool = True, mounts: Mounts | None = None
) -> list[PreflightCheck]:
    """Every row of the local preflight. ``images`` is accepted for the contract: the local cluster
    runs every image through its own table, so what it needs does not depend on the tags.
    ``mounts`` (mount point, fstype, options) default to /proc/self/mounts."""
    del images  # the local image table maps repositories, not tags, to the binaries checked below
    rows = [*cgroup_rows(mounts=mounts), privileges(), pod_tools(), postgres_binaries()]
    rows += [
        _binary("redis-server", shutil.which("redis-server"), package="redis-server"),
        _binary("nginx", str(NGINX) if _executable(NGINX) else None, package="nginx-light", want=NGINX),
        _binary(
            "prometheus",
            str(PROMETHEUS) if _executable(PROMETHEUS) else None,
            package="prometheus",
            want=PROMETHEUS,
        ),
    ]
    if chaos:
        rows.append(_binary("stress-ng (chaos)", shutil.which("stress-ng"), package="stress-ng"))
    rows.append(platform_packages())
    return rows


def cgroup_rows(*, mounts: Mounts | None = None) -> list[PreflightCheck]:
    """Two rows: a cgroup hierarchy is mounted; its cpu and memory controllers reach our cgroups."""
    mounts = cgroups.cgroup_mounts() if mounts is None else mounts
    v2 = [m for m, fs, _o in mounts if fs == "cgroup2"]
    v1 = sorted({c for _m, fs, opts in mounts if fs == "cgroup" for c in opts & {"cpu", "cpuacct", "memory"}})
    seen = [f"cgroup2 at {', '.join(v2)}"] if v2 else []
    seen += [f"v1 {', '.join(v1)}"] if v1 else []
    hierarchy = PreflightCheck(
        check="cgroup v2 or v1",
        ok=bool(seen),
        found="; ".join(seen) or "no cgroup filesystem mounted",
        action="mount cgroup2 at /sys/fs/cgroup (`mount -t cgroup2 none /sys/fs/cgroup`)",
    )
    support = cgroups.detect(mounts=mounts)
    controllers = PreflightCheck(
        check="cgroup cpu, memory controllers",
        ok=support.enforced,
        found=support.found if support.enforced else support.reason,
        action=support.action,
    )
    return [hierarchy, controllers]


def privileges() -> PreflightCheck:
    root = os.geteuid() == 0
    try:
        user = pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        user = None
    found = "root" if root else f"uid {os.geteuid()}, not root"
    found += f"; user {POSTGRES_USER} (uid {user.pw_uid})" if user else f"; no user {POSTGRES_USER}"
    todo = [] if root else ["run as root (`sudo -E ...`): pods get mount namespaces and cgroups"]
    if user is None:
        todo.append(
            f"create the user PostgreSQL pods drop to (Debian's postgresql package does): "
            f"`useradd --system --home-dir /var/lib/postgresql {POSTGRES_USER}`"
        )
    return PreflightCheck(
        "root, user postgres", ok=root and user is not None, found=found, action="\n".join(todo)
    )


def pod_tools() -> PreflightCheck:
    missing = [t for t in POD_TOOLS if shutil.which(t) is None]
    if not _executable(Path(UNSHARE)):
        missing.insert(0, UNSHARE)
    return PreflightCheck(
        check="pod tools (util-linux)",
        ok=not missing,
        found=f"missing {', '.join(missing)}" if missing else f"{UNSHARE}, {', '.join(POD_TOOLS)}",
        action="apt-get install util-linux mount hostname",
    )


def postgres_binaries() -> PreflightCheck:
    """The PostgreSQL binaries pg_entrypoint runs: ``images.PG_BIN`` exactly, not any version."""
    wanted = [images.PG_BIN / "postgres", images.PG_BIN / "initdb"]
    missing = [str(p) for p in wanted if not _executable(p)]
    if not missing:
        return PreflightCheck(f"postgres {images.PG_BIN.parent.name}", ok=True, found=str(images.PG_BIN))
    others = sorted(p.parent.parent.name for p in PG_ROOT.glob("*/bin/postgres"))
    found = f"missing {', '.join(missing)}"
    if others:
        found += f"; installed: PostgreSQL {', '.join(others)} (the local cluster runs {images.PG_BIN})"
    return PreflightCheck(
        check=f"postgres {images.PG_BIN.parent.name}",
        ok=False,
        found=found,
        action=f"apt-get install postgresql-{images.PG_BIN.parent.name} (Debian 12's postgresql)",
    )


def platform_packages() -> PreflightCheck:
    missing = [name for name in PLATFORM_PACKAGES if importlib.util.find_spec(name) is None]
    return PreflightCheck(
        check="platform packages",
        ok=not missing,
        found=f"{', '.join(missing)} not importable" if missing else ", ".join(PLATFORM_PACKAGES),
        action=PLATFORM_ACTION,
    )


def _binary(check: str, path: str | None, *, package: str, want: Path | None = None) -> PreflightCheck:
    expected = str(want) if want else f"{check.split()[0]} on PATH"
    return PreflightCheck(
        check=check,
        ok=path is not None,
        found=path or f"missing: expected {expected}",
        action=f"apt-get install {package}",
    )


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
