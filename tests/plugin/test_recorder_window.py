"""A test's window is what it measured: not the time it waited for another worker's window."""

from __future__ import annotations

from pytest_hftk8s.orchestration.recorder import TestState as State
from pytest_hftk8s.results import Window


def test_a_test_without_load_is_measured_from_when_it_held_the_lock() -> None:
    state = State(call_start=100.0, call_end=160.0, measured_from=130.0)  # waited 30 s for the lock
    assert state.window() == Window(130.0, 160.0)


def test_a_test_that_never_asked_for_the_lock_is_measured_over_its_call() -> None:
    assert State(call_start=100.0, call_end=160.0).window() == Window(100.0, 160.0)
