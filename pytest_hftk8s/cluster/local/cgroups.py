"""Container cgroups for the local backend: detect v2 or v1, apply limits, read usage and OOM kills.

Its job: create ``hft-<run id>/<pod>_<container>`` below this process's own cgroup in each needed
hierarchy, turn ``resources.limits`` into CFS quota and a memory limit without swap, list and kill
the processes inside, read the counters cAdvisor would export, and remove the directories. It must
not start processes, and it never touches a cgroup whose name lacks ``hft``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


@dataclass(frozen=True)
class CgroupSupport:
    """What this machine offers. ``version`` is "v2", "v1" or "" (limits not enforced)."""

    version: str
    bases: dict[
        str, Path
    ]  # controller ("cpu", "cpuacct", "memory" or "unified") -> directory to create under
    reason: str = ""

    @property
    def enforced(self) -> bool:
        return bool(self.version)


def _mounts() -> list[tuple[str, str, set[str]]]:
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
    """Prefer a writable unified hierarchy with cpu+memory; else writable v1 cpu, cpuacct and memory.

    ``mounts`` (mount point, fstype, options) and ``own`` (this process's cgroup per controller)
    default to /proc/self/mounts and /proc/self/cgroup.
    """
    if os.geteuid() != 0:
        return CgroupSupport("", {}, "not running as root, so cgroups cannot be created")
    own = _own_paths() if own is None else own
    mounts = _mounts() if mounts is None else mounts
    reasons = []
    for mnt, fstype, _opts in mounts:
        if fstype != "cgroup2":
            continue
        root = Path(mnt)
        controllers = (
            set((root / "cgroup.controllers").read_text().split())
            if (root / "cgroup.controllers").exists()
            else set()
        )
        if {"cpu", "memory"} <= controllers and _writable(root):
            return CgroupSupport("v2", {"unified": root})
        reasons.append(
            f"cgroup2 at {mnt} offers {sorted(controllers) or 'no'} controllers (need cpu, memory)"
        )
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
        return CgroupSupport("v1", bases)
    reasons.append(f"v1 hierarchies writable for {sorted(bases) or 'none'} (need cpu, cpuacct, memory)")
    return CgroupSupport("", {}, "; ".join(reasons))


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
        if self.support.version == "v2":
            run_dir = self.paths["unified"].parent
            run_dir.mkdir(exist_ok=True)
            for parent in (run_dir.parent, run_dir):
                _write(parent / "cgroup.subtree_control", "+cpu +memory")
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)
        self.set_limits(cpu_millis=cpu_millis, memory_bytes=memory_bytes)

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
