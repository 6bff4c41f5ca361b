"""The one registry of live chaos experiments, and the guards that empty it on the way out.

Every injected experiment registers a remover here until it is removed. :func:`remove_all` runs the
removers (each at most once, idempotent) and is wired to ``atexit``, SIGINT and SIGTERM, so chaos
never outlives the session even when the ``finally`` of a context manager cannot run. SIGTERM (a CI
job cancelled, ``timeout``, ``kill``) is handled like Ctrl-C: the chaos goes at once, then a
``KeyboardInterrupt`` unwinds the session, so its ``finally`` blocks, fixture teardowns and ``atexit``
hooks run (Python's default for SIGTERM ends the process with none of them). This module owns those
process-wide hooks and nothing else: it does not know what a remover talks to.
"""

from __future__ import annotations

import atexit
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["install_guards", "live", "register", "remove_all", "unregister"]

Remover = Callable[[], None]

_lock = threading.RLock()
_live: dict[str, Remover] = {}
_installed = False
_signals_installed = False
_previous: dict[int, Any] = {}


def live() -> list[str]:
    """Keys of the experiments that are registered and not yet removed."""
    with _lock:
        return list(_live)


def register(key: str, remover: Remover) -> None:
    """Track ``key`` until :func:`unregister`; installs the atexit and SIGINT guards once."""
    with _lock:
        _live[key] = remover
        _install_guards()


def unregister(key: str) -> None:
    with _lock:
        _live.pop(key, None)


def remove_all() -> list[str]:
    """Run every pending remover once; returns the keys removed. Failures go to stderr, not up."""
    removed: list[str] = []
    while True:
        with _lock:
            if not _live:
                return removed
            key, remover = _live.popitem()
        try:
            remover()
            removed.append(key)
        except Exception as e:  # keep removing the others; a teardown path must not stop halfway
            print(f"pytest-hftk8s: could not remove chaos {key}: {e}", file=sys.stderr)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    remove_all()
    previous = _previous.get(signum, signal.SIG_DFL)
    if previous == signal.SIG_IGN:
        return
    if callable(previous):
        previous(signum, frame)
    else:  # SIGINT's or SIGTERM's default: unwind like Ctrl-C, so teardowns and atexit still run
        raise KeyboardInterrupt


def install_guards() -> None:
    """Wire :func:`remove_all` to ``atexit``, SIGINT and SIGTERM (once). Anything whose teardown must
    run on the way out - live chaos, the local cluster's processes - calls this when it starts."""
    with _lock:
        _install_guards()


def _install_guards() -> None:
    global _installed, _signals_installed
    if not _installed:
        atexit.register(remove_all)
        _installed = True
    # Signal handlers can only be set from the main thread; a later main-thread registration does it.
    if not _signals_installed and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            _previous[signum] = signal.getsignal(signum)
            signal.signal(signum, _on_signal)
        _signals_installed = True
