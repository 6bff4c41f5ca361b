"""Container cgroups for the local backend: detect v2 or v1, apply limits, read usage and OOM kills.

Its job: create ``hft-<run id>/<pod>_<container>`` below this process's own cgroup in each needed v1
hierarchy (v2: below the cgroup2 mount, after enabling cpu and memory in its
``cgroup.subtree_control``), turn ``resources.limits`` into CFS quota and a memory limit without swap,
list and kill the processes inside, read the counters cAdvisor would export, and remove the
directories. When the controllers do not reach our cgroups it says which are missing and how to
delegate them (:class:`V2Parent`). It must not start processes, and it never creates or removes a
cgroup whose name lacks ``hft``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_hftk8s.errors import ClusterError

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


#: The controllers every container cgroup needs: CFS quota (``cpu``) and a memory limit (``memory``).
NEEDED = ("cpu", "memory")
#: What to do when a cgroup2 parent does not offer the controllers (used in errors and the preflight).
DELEGATE_HOWTO = (
    "delegate cpu and memory from the host down to this cgroup: `echo +cpu +memory > "
    "/sys/fs/cgroup/cgroup.subtree_control`, then the same in each cgroup on the way down; or run "
    "under a systemd unit with Delegate=yes (`systemd-run --scope -p Delegate=yes <command>`); or, "
    "in a container, start it with `--privileged --cgroupns=host`"
)


@dataclass(frozen=True)
class CgroupSupport:
    """What this machine offers. ``version`` is "v2", "v1" or "" (limits not enforced)."""

    version: str
    bases: dict[
        str, Path
    ]  # controller ("cpu", "cpuacct", "memory" or "unified") -> directory to create under
    reason: str = ""  # why limits are not enforced
    action: str = ""  # what to do about it
    found: str = ""  # what was found, when enforced

    @property
    def enforced(self) -> bool:
        return bool(self.version)


@dataclass(frozen=True)
class V2Parent:
    """A cgroup2 directory the local cluster creates its cgroups below, as the kernel sees it.

    cgroup v2 gives a child a controller only when it is listed in the parent's
    ``cgroup.controllers`` (offered to it from above) and enabled in its ``cgroup.subtree_control``
    (delegated to its children). A non-root cgroup may enable controllers for its children only while
    it holds no processes of its own (the "no internal processes" rule); the kernel's root cgroup, which
    has no ``cgroup.type`` file, is exempt.
    """

    path: Path
    offered: frozenset[str]
    delegated: frozenset[str]
    hierarchy_root: bool
    processes: int
    writable: bool

    @classmethod
    def read(cls, path: Path) -> V2Parent:
        def words(name: str) -> frozenset[str]:
            try:
                return frozenset((path / name).read_text().split())
            except OSError:
                return frozenset()

        return cls(
            path=path,
            offered=words("cgroup.controllers"),
            delegated=words("cgroup.subtree_control"),
            hierarchy_root=not (path / "cgroup.type").exists(),
            processes=len(words("cgroup.procs")),
            writable=_writable(path),
        )

    @property
    def not_offered(self) -> list[str]:
        return [c for c in NEEDED if c not in self.offered]

    @property
    def not_delegated(self) -> list[str]:
        return [c for c in NEEDED if c not in self.delegated]

    @property
    def can_delegate(self) -> bool:
        """Whether writing ``+cpu +memory`` to its ``cgroup.subtree_control`` can succeed."""
        return self.writable and (self.hierarchy_root or self.processes == 0)

    @property
    def usable(self) -> bool:
        return self.writable and not self.not_offered and (not self.not_delegated or self.can_delegate)

    def problems(self) -> list[str]:
        """What stops the local cluster from limiting cpu and memory below this cgroup (empty: nothing)."""
        out = []
        p = self.path
        if self.not_offered:
            out.append(
                f"{p}/cgroup.controllers offers {sorted(self.offered) or 'no'} controllers, not "
                f"{' and '.join(self.not_offered)} (need cpu, memory): its parent does not delegate them"
            )
        if self.not_delegated and not self.can_delegate:
            why = (
                "it is not writable"
                if not self.writable
                else f"it holds {self.processes} process(es) of its own, and cgroup v2 enables controllers "
                "for the children only of a cgroup without processes"
            )
            out.append(
                f"{p}/cgroup.subtree_control enables {sorted(self.delegated) or 'no'} controllers, not "
                f"{' and '.join(self.not_delegated)}, and they cannot be enabled here: {why}"
            )
        if not self.writable and not out:
            out.append(f"{p} is not writable: a read-only cgroup mount, or not root")
        return out

    def action(self) -> str:
        """What to do about :meth:`problems`, one step a line: the commands, where there are some."""
        p = self.path
        steps = [DELEGATE_HOWTO] if self.not_offered else []
        if not self.writable:
            steps.append("run as root with the cgroup2 mount read-write (a container: --privileged)")
        elif self.not_delegated and not self.can_delegate:
            steps.append(
                f"move {p}'s own processes into a leaf cgroup, then enable the controllers for its "
                f"children: `mkdir -p {p}/init && for pid in $(cat {p}/cgroup.procs); do echo $pid > "
                f"{p}/init/cgroup.procs; done && echo +cpu +memory > {p}/cgroup.subtree_control`"
            )
        return "\n".join(steps)

    def describe(self) -> str:
        state = (
            "delegated"
            if not self.not_delegated
            else "offered; enabled in cgroup.subtree_control at the first deploy"
        )
        return f"cgroup v2 at {self.path}: cpu and memory {state}, writable"


def cgroup_mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, options) of every cgroup and cgroup2 mount, from /proc/self/mounts."""
    out = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _dev, mnt, fstype, opts, *_ = line.split()
        if fstype in ("cgroup", "cgroup2"):
            out.append((mnt, fstype, set(opts.split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """controller -> this process's cgroup path in that hierarchy ("" key = v2)."""
    out: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _hid, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            out[c] = path
    return out


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK)


def detect(
    *, mounts: list[tuple[str, str, set[str]]] | None = None, own: dict[str, str] | None = None
) -> CgroupSupport:
    """Prefer a writable unified hierarchy whose cpu and memory reach our cgroups; else writable v1
    cpu, cpuacct and memory. Reads only.

    ``mounts`` (mount point, fstype, options) and ``own`` (this process's cgroup per controller)
    default to /proc/self/mounts and /proc/self/cgroup; pointing ``mounts`` at a directory laid out
    like a cgroup2 root is how the tests check the v2 rules without the kernel.
    """
    if os.geteuid() != 0:
        return CgroupSupport(
            "", {}, "not running as root, so cgroups cannot be created", "run as root (sudo -E ...)"
        )
    own = _own_paths() if own is None else own
    mounts = cgroup_mounts() if mounts is None else mounts
    reasons: list[str] = []
    actions: list[str] = []
    for mnt, fstype, _opts in mounts:
        if fstype != "cgroup2":
            continue
        parent = V2Parent.read(Path(mnt))
        if parent.usable:
            return CgroupSupport("v2", {"unified": parent.path}, found=parent.describe())
        reasons.append(f"cgroup2 at {mnt}: " + "; ".join(parent.problems()))
        if any(c in parent.offered for c in NEEDED) or not any(fs == "cgroup" for _m, fs, _o in mounts):
            actions.append(parent.action())  # a v2 tree with no controllers beside v1 ones is not the fix
    bases: dict[str, Path] = {}
    for mnt, fstype, opts in mounts:
        if fstype != "cgroup":
            continue
        for controller in ("cpu", "cpuacct", "memory"):
            if controller in opts and controller not in bases:
                base = Path(mnt) / own.get(controller, "/").lstrip("/")
                if _writable(base):
                    bases[controller] = base
    if {"cpu", "cpuacct", "memory"} <= set(bases):
        found = "cgroup v1: " + ", ".join(f"{c} at {bases[c]}" for c in ("cpu", "cpuacct", "memory"))
        return CgroupSupport("v1", bases, found=found + ", writable")
    if any(fs == "cgroup" for _m, fs, _o in mounts):
        reasons.append(f"v1 hierarchies writable for {sorted(bases) or 'none'} (need cpu, cpuacct, memory)")
        actions.append("mount the v1 cpu, cpuacct and memory hierarchies read-write and run as root")
    if not mounts:
        reasons.append("no cgroup or cgroup2 filesystem is mounted")
        actions.append("mount cgroup2 at /sys/fs/cgroup (`mount -t cgroup2 none /sys/fs/cgroup`)")
    return CgroupSupport("", {}, "; ".join(reasons), " | ".join(a for a in actions if a))


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_int(path: Path, default: int = 0) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def _read_kv(path: Path) -> dict[str, int]:
    out = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                out[key] = int(value)
    except OSError:
        pass
    return out


@dataclass(frozen=True)
class CgroupUsage:
    cpu_seconds: float
    cfs_periods: int
    cfs_throttled_periods: int
    memory_working_set: int
    memory_usage: int
    memory_limit: int
    oom_kills: int | None  # None: the kernel does not count them here


class ContainerCgroup:
    """One container's cgroup directories (one per v1 hierarchy, or one v2 directory)."""

    def __init__(self, support: CgroupSupport, *, run_dir_name: str, name: str) -> None:
        if "hft" not in run_dir_name:
            raise ValueError(f"cgroup run directory must contain 'hft': {run_dir_name}")
        self.support = support
        self.paths = {c: base / run_dir_name / name for c, base in support.bases.items()}

    def run_dirs(self) -> list[Path]:
        return [p.parent for p in self.paths.values()]

    def create(self, *, cpu_millis: int | None, memory_bytes: int | None) -> None:
        """Make the directories and set the limits; :class:`ClusterError` saying what is missing and
        how to delegate it when the kernel refuses (e.g. cpu/memory not delegated to this subtree)."""
        try:
            if self.support.version == "v2":
                run_dir = self.paths["unified"].parent
                run_dir.mkdir(exist_ok=True)
                for parent in (run_dir.parent, run_dir):
                    _write(parent / "cgroup.subtree_control", "+cpu +memory")
            for path in self.paths.values():
                path.mkdir(parents=True, exist_ok=True)
            self.set_limits(cpu_millis=cpu_millis, memory_bytes=memory_bytes)
        except OSError as e:
            raise ClusterError(self._explain(e)) from e

    def _explain(self, e: OSError) -> str:
        where = f"{e.filename}: " if e.filename else ""
        seen = f"{where}{e.strerror or e}"
        if self.support.version == "v2":
            parent = V2Parent.read(next(iter(self.paths.values())).parent.parent)
            problems = "; ".join(parent.problems()) or (
                "the controllers look delegated, yet the kernel refused (EBUSY on cgroup.subtree_control "
                "means a cgroup on the way holds processes of its own)"
            )
            todo = (parent.action() or DELEGATE_HOWTO).replace("\n", "; also: ")
            return (
                f"expected to create container cgroups with cpu and memory limits below {parent.path}; "
                f"the kernel refused ({seen}). Found: {problems}. What to do: {todo}"
            )
        return (
            f"expected to create container cgroups with cpu and memory limits in the v1 hierarchies "
            f"{sorted(str(b) for b in self.support.bases.values())}; the kernel refused ({seen}). "
            "What to do: run as root with the cpu, cpuacct and memory hierarchies mounted read-write."
        )

    def set_limits(self, *, cpu_millis: int | None, memory_bytes: int | None) -> None:
        if self.support.version == "v2":
            p = self.paths["unified"]
            quota = "max" if cpu_millis is None else str(cpu_millis * CFS_PERIOD_US // 1000)
            _write(p / "cpu.max", f"{quota} {CFS_PERIOD_US}")
            _write(p / "memory.max", "max" if memory_bytes is None else str(memory_bytes))
            if (p / "memory.swap.max").exists():
                _write(p / "memory.swap.max", "0")
        elif self.support.version == "v1":
            cpu, mem = self.paths["cpu"], self.paths["memory"]
            _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(
                cpu / "cpu.cfs_quota_us",
                "-1" if cpu_millis is None else str(cpu_millis * CFS_PERIOD_US // 1000),
            )
            limit = "-1" if memory_bytes is None else str(memory_bytes)
            if (mem / "memory.memsw.limit_in_bytes").exists() and memory_bytes is None:
                _write(mem / "memory.memsw.limit_in_bytes", limit)
            _write(mem / "memory.limit_in_bytes", limit)
            if (mem / "memory.memsw.limit_in_bytes").exists() and memory_bytes is not None:
                _write(mem / "memory.memsw.limit_in_bytes", limit)  # no swap: memory+swap == memory
            _write(mem / "memory.swappiness", "0")

    def procs_files(self) -> list[Path]:
        return [p / "cgroup.procs" for p in self.paths.values()]

    def pids(self) -> set[int]:
        out: set[int] = set()
        for f in self.procs_files():
            with contextlib.suppress(OSError):
                out |= {int(x) for x in f.read_text().split()}
        return out

    def kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def oom_kills(self) -> int | None:
        if self.support.version == "v2":
            return _read_kv(self.paths["unified"] / "memory.events").get("oom_kill")
        if self.support.version == "v1":
            return _read_kv(self.paths["memory"] / "memory.oom_control").get("oom_kill")
        return None

    def usage(self) -> CgroupUsage:
        if self.support.version == "v2":
            p = self.paths["unified"]
            cpu = _read_kv(p / "cpu.stat")
            stat = _read_kv(p / "memory.stat")
            current = _read_int(p / "memory.current")
            limit_text = (p / "memory.max").read_text().strip() if (p / "memory.max").exists() else "max"
            return CgroupUsage(
                cpu_seconds=cpu.get("usage_usec", 0) / 1e6,
                cfs_periods=cpu.get("nr_periods", 0),
                cfs_throttled_periods=cpu.get("nr_throttled", 0),
                memory_working_set=max(0, current - stat.get("inactive_file", 0)),
                memory_usage=current,
                memory_limit=0 if limit_text == "max" else int(limit_text),
                oom_kills=self.oom_kills(),
            )
        cpu = _read_kv(self.paths["cpu"] / "cpu.stat")
        mem = self.paths["memory"]
        usage = _read_int(mem / "memory.usage_in_bytes")
        stat = _read_kv(mem / "memory.stat")
        return CgroupUsage(
            cpu_seconds=_read_int(self.paths["cpuacct"] / "cpuacct.usage") / 1e9,
            cfs_periods=cpu.get("nr_periods", 0),
            cfs_throttled_periods=cpu.get("nr_throttled", 0),
            memory_working_set=max(0, usage - stat.get("total_inactive_file", 0)),
            memory_usage=usage,
            memory_limit=_read_int(mem / "memory.limit_in_bytes"),
            oom_kills=self.oom_kills(),
        )

    def remove(self, *, timeout: float = 5.0) -> list[str]:
        """Kill what is left, then rmdir. Returns the paths that could not be removed."""
        return remove_tree(list(self.paths.values()), timeout=timeout)


def remove_tree(paths: list[Path], *, timeout: float = 5.0) -> list[str]:
    """SIGKILL every process in ``paths`` (and their child cgroups) and rmdir them, deepest first."""
    deadline = time.monotonic() + timeout
    todo = sorted(
        {d for p in paths if p.exists() for d in [p, *[c for c in p.rglob("*") if c.is_dir()]]},
        key=lambda d: -len(d.parts),
    )
    failed: list[str] = []
    for d in todo:
        if "hft" not in str(d):
            continue
        while True:
            pids = []
            with contextlib.suppress(OSError):
                pids = [int(x) for x in (d / "cgroup.procs").read_text().split()]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    failed.append(f"{d}: {e}")
                    break
                time.sleep(0.02)
    return failed
