"""The sweep runs only when asked for: ``-m sweep`` (or any -m naming it) or ``--hft-sweep``; a plain
run of the bundled suites (the README's main job) deselects it. Also the sweep's options."""

from __future__ import annotations

import pytest


def _collected(result: pytest.RunResult) -> list[str]:
    return sorted(line.split("::")[-1] for line in result.stdout.lines if "::" in line)


@pytest.fixture
def two_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.sweep
        def test_the_sweep(hft_sweep):
            pass

        def test_other():
            pass
        """
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["test_other"]),
        (["--hft-cluster=local"], ["test_other"]),
        (["-m", "sweep"], ["test_the_sweep"]),
        (["--hft-cluster=local", "-m", "sweep or not sweep"], ["test_other", "test_the_sweep"]),
        (["-m", "not sweep"], ["test_other"]),
        (["--hft-sweep"], ["test_other", "test_the_sweep"]),
        (["-m", "resilience or sweepish"], []),
    ],
)
def test_sweep_is_deselected_unless_asked_for(
    pytester: pytest.Pytester, base_args: list[str], two_tests: None, args: list[str], expected: list[str]
) -> None:
    result = pytester.runpytest(*base_args, "--co", "-q", *args)
    assert _collected(result) == expected, result.stdout.str()


def test_a_users_own_sweep_marker_is_left_alone(pytester: pytest.Pytester, base_args: list[str]) -> None:
    # Installed, the plugin loads in every pytest run: a test marked sweep that does not use the
    # plugin's sweep is someone else's, and stays selected.
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.sweep
        def test_theirs():
            pass
        """
    )
    result = pytester.runpytest(*base_args, "--co", "-q", "-p", "no:randomly")
    assert _collected(result) == ["test_theirs"], result.stdout.str()


def test_env_variable_selects_the_sweep(
    pytester: pytest.Pytester, base_args: list[str], two_tests: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HFT_SWEEP", "1")
    result = pytester.runpytest(*base_args, "--co", "-q")
    assert _collected(result) == ["test_other", "test_the_sweep"]


def test_the_bundled_suites_leave_the_sweep_out(pytester: pytest.Pytester, base_args: list[str]) -> None:
    plain = pytester.runpytest(
        *base_args, "--co", "-q", "--hft-cluster=local", "--pyargs", "pytest_hftk8s.suites"
    )
    names = " ".join(plain.stdout.lines)
    assert "test_baseline_throughput_and_latency" in names
    assert "test_scaling_sweep" not in names
    plain.stdout.fnmatch_lines(["*deselected*"])
    only = pytester.runpytest(
        *base_args, "--co", "-q", "--hft-cluster=local", "-m", "sweep", "--pyargs", "pytest_hftk8s.suites"
    )
    assert _collected(only) == ["test_scaling_sweep_and_usl_fit"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hft-sweep-backends=1,x"], "*--hft-sweep-backends: expected a comma-separated list*got '1,x'*"),
        (["--hft-sweep-backends=0,2"], "*--hft-sweep-backends: expected*from 1 to 64*"),
        (["--hft-sweep-backends=2,2"], "*--hft-sweep-backends: expected*distinct*"),
        (["--hft-sweep-min-ratio=1.5"], "*expected a number in (0, 1]*got '1.5'*"),
        (["--hft-sweep-budget=0"], "*expected a number of seconds > 0*"),
        (["--hft-sweep-p99-ms=-1"], "*expected a latency bound in milliseconds > 0*"),
    ],
)
def test_bad_sweep_options_are_usage_errors(
    pytester: pytest.Pytester, base_args: list[str], args: list[str], message: str
) -> None:
    result = pytester.runpytest(*base_args, "--hft-cluster=local", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
