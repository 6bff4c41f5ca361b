"""Which run this is: the commit of the tests' repository, the machine, the plugin's version.

A comparison names its baseline by these (``Compared with <commit, date, machine>``), and warns when
the machines differ. The commit is read from the repository's files (``.git/HEAD`` and the ref it
names, loose or packed), without running git.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import platform
import socket

from pytest_hftk8s.results import RunIdentity


def git_commit(start: pathlib.Path) -> str:
    """The commit checked out in the repository around ``start`` ("" when there is none)."""
    for directory in (start, *start.parents):
        git = directory / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (directory / text.split(":", 1)[1].strip()).resolve()
        if git.is_dir():
            return _resolve_head(git)
    return ""


def _resolve_head(git: pathlib.Path) -> str:
    with contextlib.suppress(OSError):
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        common = git
        if (git / "commondir").is_file():  # a linked worktree keeps its refs in the main repository
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()
            packed = base / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    sha, _, name = line.partition(" ")
                    if name == ref:
                        return sha
    return ""


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def plugin_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-hftk8s")
    except PackageNotFoundError:
        return ""


def run_identity(root: pathlib.Path, *, started: float) -> RunIdentity:
    return RunIdentity(
        commit=git_commit(root),
        started=started,
        machine=socket.gethostname(),
        cpu_model=cpu_model(),
        cores=os.cpu_count() or 0,
        python=platform.python_version(),
        plugin_version=plugin_version(),
    )
