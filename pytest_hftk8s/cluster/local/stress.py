"""stress-ng as Chaos Mesh's chaos-daemon runs it: inside a container's cgroups, and what it achieved.

Its job: turn a StressChaos stressor into a stress-ng command line (:class:`StressSpec`), start it so
that it joins every cgroup hierarchy of the container *before* it execs (a tiny ``sh`` wrapper
writes its own pid to each ``cgroup.procs``: no cycle or byte is spent outside), verify the attach,
kill its process group, and hold the requested-versus-observed intensity record. It must not pick
targets or decide when to stress: :mod:`.chaos` does.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pytest_hftk8s.cluster.local.cgroups import ContainerCgroup
from pytest_hftk8s.errors import ChaosError


@dataclass(frozen=True)
class StressSpec:
    """stress-ng parameters with Chaos Mesh's meaning (``vm_bytes`` is the total over all workers)."""

    kind: Literal["cpu", "memory"]
    workers: int
    load: int = 100
    vm_bytes: int = 0
    timeout: float | None = None

    def argv(self, stress_ng: str) -> list[str]:
        argv = [stress_ng]
        if self.kind == "cpu":
            argv += ["--cpu", str(self.workers), "--cpu-load", str(self.load)]
        else:  # allocate, touch once and hold, like Chaos Mesh's memStress (no page re-dirtying loop)
            # stress-ng divides --vm-bytes among its vm workers (stress_vm: vm_bytes /= instances),
            # so the total is passed: Chaos Mesh's size is also the sum over all workers.
            total = max(4096 * self.workers, self.vm_bytes)
            argv += ["--vm", str(self.workers), "--vm-bytes", str(total), "--vm-keep", "--vm-hang", "0"]
        if self.timeout is not None:
            argv += ["--timeout", f"{max(1, round(self.timeout))}s"]
        return argv


class StressProcess:
    """One stress-ng run attached to one container's cgroups, in its own process group."""

    def __init__(self, popen: subprocess.Popen[bytes], *, log_path: Path) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.log_path = log_path

    @classmethod
    def start(
        cls,
        spec: StressSpec,
        *,
        target_id: str,
        cgroup: ContainerCgroup | None,
        stress_ng: str,
        log_path: Path,
    ) -> StressProcess:
        """Start and verify the attach; :class:`ChaosError` when stress-ng or the cgroup is unusable."""
        binary = shutil.which(stress_ng)
        if binary is None:
            raise ChaosError(
                f"stress-ng is needed to stress {target_id}: expected it on PATH as {stress_ng!r}, found none. "
                "Install it (apt-get install stress-ng)."
            )
        if cgroup is None:
            raise ChaosError(
                f"{target_id} has no cgroup (limits not enforced here), so a stress cannot be placed inside "
                "it; run as root on a machine with writable cgroups."
            )
        q = shlex.quote
        joins = " && ".join(f"echo $$ > {q(str(f))}" for f in cgroup.procs_files())
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                ["/bin/sh", "-c", f'{joins} && exec "$@"', "hft-stress", binary, *spec.argv(binary)[1:]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        proc = cls(popen, log_path=log_path)
        proc._verify_attached(target_id, cgroup)
        return proc

    def _verify_attached(self, target_id: str, cgroup: ContainerCgroup, *, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if Path(f"/proc/{self.pid}/comm").read_text().strip().startswith("stress-ng"):
                    missing = [
                        str(f) for f in cgroup.procs_files() if str(self.pid) not in f.read_text().split()
                    ]
                    if not missing:
                        return
                    self.kill()
                    raise ChaosError(
                        f"stress-ng for {target_id} runs outside the container's cgroups {missing}; "
                        "expected it inside every hierarchy. Nothing was injected."
                    )
            time.sleep(0.01)
        self.kill()
        raise ChaosError(
            f"stress for {target_id} failed to start inside cgroups "
            f"{[str(f) for f in cgroup.procs_files()]}: expected a running stress-ng, seen "
            f"exit code {self.popen.poll()} with output {self.output()!r}. Nothing was injected; check "
            "that the container's cgroup still exists (the container may have restarted)."
        )

    def output(self, limit: int = 600) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-limit:]
        return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, *, timeout: float = 5.0) -> list[int]:
        """SIGKILL the whole group and wait, bounded, until none of its workers is left.

        Waiting for the parent alone is not enough: a vm worker freeing its memory outlives it
        for a moment, and a caller that asserts "no stress left" right after would see it.
        Returns the workers still alive at the deadline (none, normally) for the caller to report.
        """
        deadline = time.monotonic() + timeout
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=timeout)
        while (left := group_members(self.pid)) and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)  # a worker forked while the first kill went out
            time.sleep(0.02)
        return left


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


@dataclass
class Intensity:
    """Requested vs observed stress on one container (cores for cpu, bytes for memory).

    cpu: ``observed`` is the whole container's usage (cpuacct delta / wall after a warm-up): pressure
    means the container runs at min(workers x load, its limit). memory: ``observed`` is the peak
    working set above ``baseline`` (the working set before injection), i.e. what the stress holds;
    ``expected`` is the size, capped by what the limit leaves above the baseline.
    """

    resource: str
    requested: float
    expected: float  # requested, capped by the container's limit
    baseline: float = 0.0
    observed: float = 0.0
    reached: bool = False
    oom_kills: int = 0
    samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        unit = "cores" if self.resource == "cpu" else "bytes"
        return {
            "resource": self.resource,
            "unit": unit,
            "requested": round(self.requested, 4),
            "expected": round(self.expected, 4),
            "baseline": round(self.baseline, 4),
            "observed": round(self.observed, 4),
            "reached": self.reached,
            "oom_kills": self.oom_kills,
            "samples": self.samples,
        }


def with_timeout(spec: StressSpec, seconds: float) -> StressSpec:
    return StressSpec(spec.kind, spec.workers, load=spec.load, vm_bytes=spec.vm_bytes, timeout=seconds)
