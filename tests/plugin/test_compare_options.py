"""``--hft-repeat``, ``--hft-compare``, ``--hft-min-effect``, ``--hft-fail-on-regression`` and
``--hft-cpu-limit-scale`` as a user types them: parsed, refused with a clear message, and (for the
repeats) applied at collection, all before anything is deployed."""

from __future__ import annotations

import json
import pathlib

import pytest

from pytest_hftk8s.errors import ConfigError
from pytest_hftk8s.report.summary import read
from pytest_hftk8s.settings import (
    parse_compare,
    parse_cpu_limit_scale,
    parse_min_effect,
    parse_repeat,
    resolve,
)


def _resolve(**flags: object) -> object:
    return resolve({f"hft_{k}": v for k, v in flags.items()}, {}, rootpath=pathlib.Path("/r"), environ={})


@pytest.mark.parametrize(("raw", "value"), [("1", 1), ("3", 3), ("50", 50)])
def test_repeat_takes_a_whole_number_from_1_to_50(raw, value):
    assert parse_repeat(raw) == value


@pytest.mark.parametrize("raw", ["0", "-1", "2.5", "many", "51"])
def test_repeat_refuses_anything_else(raw):
    with pytest.raises(ConfigError, match="--hft-repeat: expected a whole number of repeats from 1 to 50"):
        parse_repeat(raw)


@pytest.mark.parametrize(("raw", "value"), [("0.05", 0.05), ("5%", 0.05), ("12.5%", 0.125)])
def test_min_effect_takes_a_fraction_or_a_percentage(raw, value):
    assert parse_min_effect(raw) == pytest.approx(value)


@pytest.mark.parametrize("raw", ["0", "1", "100%", "-0.1", "five"])
def test_min_effect_refuses_anything_outside_0_1(raw):
    with pytest.raises(ConfigError, match="--hft-min-effect"):
        parse_min_effect(raw)


@pytest.mark.parametrize("raw", ["backend", "=0.7", "backend=0", "backend=5", "backend=x", "Back_end=0.7"])
def test_cpu_limit_scale_refuses_malformed_values(raw):
    with pytest.raises(ConfigError, match="--hft-cpu-limit-scale: expected WORKLOAD=FACTOR"):
        parse_cpu_limit_scale(raw)


def test_compare_is_resolved_against_the_rootdir_and_needs_a_cluster():
    settings = _resolve(cluster="local", compare=parse_compare("prev/hft-report"))
    assert settings.compare == pathlib.Path("/r/prev/hft-report")  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="only make sense with a cluster"):
        _resolve(compare=parse_compare("prev"))


def test_fail_on_regression_needs_a_baseline():
    with pytest.raises(ConfigError, match=r"--hft-fail-on-regression needs a baseline.*--hft-compare"):
        _resolve(cluster="local", fail_on_regression=True)


def test_a_missing_baseline_is_a_usage_error_before_anything_is_deployed(pytester, base_args):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*base_args, "--hft-cluster=local", f"--hft-compare={pytester.path / 'nope'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--hft-compare: expected a previous hft-report/ directory*nothing is at*nope*"]
    )


def test_a_baseline_that_is_not_a_summary_is_refused_with_what_was_found(tmp_path):
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"is not a readable summary\.json"):
        read(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ConfigError, match=r"is not an hftk8s summary\.json"):
        read(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"schema": 99, "tests": []}))
    with pytest.raises(ConfigError, match="newer than this plugin"):
        read(tmp_path / "summary.json")


def test_an_unpacked_ci_artifact_is_found_one_level_down(tmp_path):
    report = tmp_path / "artifact" / "hft-report"
    report.mkdir(parents=True)
    (report / "summary.json").write_text(
        json.dumps(
            {
                "schema": 2,
                "cluster": "local",
                "profile": "local",
                "started": 1.0,
                "finished": 2.0,
                "tests": [],
            }
        )
    )
    assert read(tmp_path / "artifact").repeat == 1  # an older schema reads with the new fields' defaults


def test_repeat_parametrizes_the_load_phases_only(pytester, base_args):
    pytester.makepyfile(
        """
        import pytest

        def test_load(hft_load):
            pass

        @pytest.mark.parametrize("target", ["a", "b"])
        def test_load_param(hft_load, target):
            pass

        def test_no_load():
            pass
        """
    )
    result = pytester.runpytest(*base_args, "--hft-cluster=local", "--hft-repeat=3", "--co", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert ids == [
        "test_repeat_parametrizes_the_load_phases_only.py::test_load[rep1]",
        "test_repeat_parametrizes_the_load_phases_only.py::test_load[rep2]",
        "test_repeat_parametrizes_the_load_phases_only.py::test_load[rep3]",
        # the repeat is the outer loop: each repeat runs every case before the next repeat starts
        *[f"test_repeat_parametrizes_the_load_phases_only.py::test_load_param[rep{n}-{t}]"
          for n in (1, 2, 3) for t in ("a", "b")],
        "test_repeat_parametrizes_the_load_phases_only.py::test_no_load",
    ]  # fmt: skip
    plain = pytester.runpytest(*base_args, "--hft-cluster=local", "--co", "-q")
    assert not any("rep1" in line for line in plain.stdout.lines)
