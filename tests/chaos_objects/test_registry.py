"""The live-experiment registry: every remover runs once, on demand, on SIGINT and at exit.

Signal and atexit behaviour is checked in child interpreters so this process keeps its handlers.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from pytest_hftk8s.chaos import registry


def test_remove_all_runs_each_remover_once_and_survives_failures() -> None:
    calls: list[str] = []

    def failing() -> None:
        calls.append("bad")
        raise RuntimeError("API gone")

    registry.register("ns/stresschaos/a", lambda: calls.append("a"))
    registry.register("ns/podchaos/b", failing)
    registry.register("ns/podchaos/c", lambda: calls.append("c"))
    registry.unregister("ns/podchaos/c")  # removed normally by its context manager
    assert sorted(registry.remove_all()) == ["ns/stresschaos/a"]
    assert sorted(calls) == ["a", "bad"]
    assert registry.remove_all() == []
    assert registry.live() == []


def _child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )


def test_sigint_removes_then_interrupts() -> None:
    done = _child(
        """
        import os, signal
        from pytest_hftk8s.chaos import registry
        registry.register("ns/stresschaos/x", lambda: print("removed x", flush=True))
        try:
            os.kill(os.getpid(), signal.SIGINT)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted; live:", registry.live())
        """
    )
    assert done.stdout.splitlines() == ["removed x", "interrupted; live: []"], done.stderr


def test_sigint_respects_an_ignoring_previous_handler() -> None:
    done = _child(
        """
        import os, signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        from pytest_hftk8s.chaos import registry
        registry.register("ns/podchaos/y", lambda: print("removed y", flush=True))
        os.kill(os.getpid(), signal.SIGINT)
        print("still running")
        """
    )
    assert done.stdout.splitlines() == ["removed y", "still running"], done.stderr


def test_atexit_removes_what_is_still_live() -> None:
    done = _child(
        """
        from pytest_hftk8s.chaos import registry
        registry.register("ns/networkchaos/z", lambda: print("removed z at exit", flush=True))
        print("exiting")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["exiting", "removed z at exit"]
