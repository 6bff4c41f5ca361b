"""The one registry of live chaos experiments, and the guards that empty it on the way out.

Every injected experiment registers a remover here until it is removed. :func:`remove_all` runs the
removers (each at most once, idempotent) and is wired to ``atexit`` and to SIGINT, so chaos never
outlives the session even when the ``finally`` of a context manager cannot run. This module owns
those two process-wide hooks and nothing else: it does not know what a remover talks to.
"""

from __future__ import annotations

import atexit
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["live", "register", "remove_all", "unregister"]

Remover = Callable[[], None]

_lock = threading.RLock()
_live: dict[str, Remover] = {}
_installed = False
_sigint_installed = False
_previous_sigint: Any = None


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


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    remove_all()
    previous = _previous_sigint
    if previous == signal.SIG_IGN:
        return
    if callable(previous):
        previous(signum, frame)
    else:
        raise KeyboardInterrupt


def _install_guards() -> None:
    global _installed, _sigint_installed, _previous_sigint
    if not _installed:
        atexit.register(remove_all)
        _installed = True
    # Signal handlers can only be set from the main thread; a later main-thread registration does it.
    if not _sigint_installed and threading.current_thread() is threading.main_thread():
        _previous_sigint = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, _on_sigint)
        _sigint_installed = True
