"""The local cluster's state file, and the sweep that cleans up after a run that was killed outright.

Its job: record, as the cluster runs, everything that must not outlive it - the owner process, the
runtime directory, the cgroup directories and every container process (pid + kernel start time) - in
``<state_dir>/local-<run id>.json``; and :func:`sweep`: for each state file whose owner is gone, kill
the recorded processes (only those whose start time still matches, plus whatever is inside the
recorded cgroups), remove the cgroups and the runtime directory, then the file. It must not touch
anything the state file does not name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pytest_hftk8s.cluster.local.cgroups import remove_tree
from pytest_hftk8s.cluster.local.runner import proc_start_time

PREFIX = "local-"


@dataclass
class RunState:
    run_id: str
    owner_pid: int
    owner_start: int | None
    runtime_dir: str
    cgroup_dirs: list[str] = field(default_factory=list)
    processes: list[tuple[int, int | None]] = field(default_factory=list)

    @classmethod
    def for_this_process(cls, run_id: str, runtime_dir: Path) -> RunState:
        return cls(run_id, os.getpid(), proc_start_time(os.getpid()), str(runtime_dir))

    def owner_alive(self) -> bool:
        return self.owner_start is not None and proc_start_time(self.owner_pid) == self.owner_start


class StateFile:
    """Atomic writes of one run's :class:`RunState`."""

    def __init__(self, state_dir: Path, state: RunState) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / f"{PREFIX}{state.run_id}.json"
        self.state = state
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.state), indent=1))
        os.replace(tmp, self.path)

    def add_process(self, pid: int, start_time: int | None) -> None:
        self.state.processes.append((pid, start_time))
        self.save()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _kill_recorded(processes: list[tuple[int, int | None]]) -> int:
    killed = 0
    for pid, start in processes:
        if start is not None and proc_start_time(pid) == start:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                    killed += 1
                except (ProcessLookupError, PermissionError):
                    pass
    return killed


def clean(state: RunState, *, timeout: float = 10.0) -> list[str]:
    """Kill, remove cgroups and the runtime directory of ``state``; returns what was left (problems)."""
    _kill_recorded([(int(p), s) for p, s in state.processes])
    problems = remove_tree([Path(d) for d in state.cgroup_dirs], timeout=timeout)
    deadline = time.monotonic() + timeout
    runtime = Path(state.runtime_dir)
    while runtime.exists() and "hft" in runtime.name:
        shutil.rmtree(runtime, ignore_errors=True)
        if not runtime.exists() or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # a dying process may still be writing its log
    if runtime.exists():
        problems.append(f"{runtime}: could not be removed")
    return problems


def sweep(state_dir: Path) -> list[str]:
    """Clean every run under ``state_dir`` whose owner process is gone. Returns a line per swept run."""
    report: list[str] = []
    if not state_dir.is_dir():
        return report
    for path in sorted(state_dir.glob(f"{PREFIX}*.json")):
        try:
            raw = json.loads(path.read_text())
            state = RunState(**raw)
        except (OSError, ValueError, TypeError) as e:
            report.append(f"{path}: unreadable state file ({e}); left in place")
            continue
        if state.owner_alive():
            continue
        problems = clean(state)
        path.unlink(missing_ok=True)
        report.append(
            f"swept run {state.run_id} (owner pid {state.owner_pid} gone): "
            f"{len(state.processes)} processes, {len(state.cgroup_dirs)} cgroups, {state.runtime_dir}"
            + (f"; problems: {problems}" if problems else "")
        )
    return report
