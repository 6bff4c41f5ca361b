"""Start and stop one container instance as a process group in its own mount and UTS namespace.

Its job: launch a :class:`~.images.LaunchPlan` the way a container runtime would - join the
container's cgroups first, give it the cluster's /etc/hosts and /etc/resolv.conf and the pod's volume
bind mounts (``unshare --mount --uts``, private propagation, so nothing leaks to the host), set the
hostname to the pod name, drop to the plan's user, then exec the command with stdout/stderr appended to
the container's log file. It must not decide when to start or restart: the pod supervisor does.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from pytest_hftk8s.cluster.local.cgroups import ContainerCgroup
from pytest_hftk8s.cluster.local.images import LaunchPlan

UNSHARE = "/usr/bin/unshare"


def proc_start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` (clock ticks since boot), to tell a pid from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def wrapper_argv(
    plan: LaunchPlan, *, cgroup: ContainerCgroup | None, hosts: Path, resolv: Path, hostname: str
) -> list[str]:
    """``unshare ... sh -c '<join cgroups; mounts; exec>' <argv>`` (sh execs, so the pid is the container's)."""
    q = shlex.quote
    steps = [f"echo $$ > {q(str(f))}" for f in (cgroup.procs_files() if cgroup else [])]
    steps.append(f"hostname {q(hostname)}")
    steps += [f"mount --bind {q(str(hosts))} /etc/hosts", f"mount --bind {q(str(resolv))} /etc/resolv.conf"]
    steps += [f"mount --bind {q(str(src))} {q(dst)}" for src, dst in plan.binds]
    if plan.user:
        steps.append(f'exec setpriv --reuid={q(plan.user)} --regid={q(plan.user)} --init-groups -- "$@"')
    else:
        steps.append('exec "$@"')
    script = " && ".join(steps)
    return [
        UNSHARE,
        "--mount",
        "--uts",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        script,
        "container",
        *plan.argv,
    ]


class ContainerProcess:
    """One running instance: its pid (also its process-group id) and its log file."""

    def __init__(self, popen: subprocess.Popen[bytes], *, log_path: Path) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.start_time = proc_start_time(popen.pid)
        self.log_path = log_path

    @classmethod
    def start(
        cls,
        plan: LaunchPlan,
        *,
        cgroup: ContainerCgroup | None,
        hosts: Path,
        resolv: Path,
        hostname: str,
        log_path: Path,
    ) -> ContainerProcess:
        argv = wrapper_argv(plan, cgroup=cgroup, hosts=hosts, resolv=resolv, hostname=hostname)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {shlex.join(plan.argv)}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=plan.cwd,
                env=plan.env,
                start_new_session=True,
                close_fds=True,
            )
        return cls(popen, log_path=log_path)

    def poll(self) -> int | None:
        return self.popen.poll()

    def signal_group(self, sig: int) -> None:
        """Signal the whole process group (the container's session)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def kill(self, cgroup: ContainerCgroup | None) -> None:
        """SIGKILL the group and anything left in the container's cgroup (e.g. daemons that setsid)."""
        self.signal_group(signal.SIGKILL)
        if cgroup is not None:
            cgroup.kill_all()

    @staticmethod
    def exit_code(returncode: int) -> int:
        """Popen's ``-SIGNUM`` as a container runtime reports it (128 + signal)."""
        return 128 - returncode if returncode < 0 else returncode
