"""The resilience score: weights from SLO severity, one assertions term per test, nothing counted twice."""

from __future__ import annotations

import pytest

from pytest_hftk8s.results import ChaosRecord, ScaleRecord, SloResult, TestRecord, Window
from pytest_hftk8s.slo.score import WEIGHTS, resilience_score

W = Window(0.0, 10.0)


def _slo(name: str, passed: bool, severity: str = "error") -> SloResult:
    return SloResult(name=name, query="q", comparator="<=", threshold=1, observed=0, passed=passed, window=W,
                     severity=severity)  # fmt: skip


def _test(nodeid: str, outcome: str, *slos: SloResult, chaos: bool = True) -> TestRecord:
    return TestRecord(nodeid=nodeid, outcome=outcome, slos=list(slos),
                      chaos=[ChaosRecord(experiment=f"pod-kill {nodeid}")] if chaos else [])  # fmt: skip


def test_all_held_scores_100_and_non_resilience_tests_do_not_count() -> None:
    score = resilience_score([
        _test("kill", "passed", _slo("recovery_time_s", True, "critical"), _slo("acked", True)),
        _test("baseline", "failed", _slo("throughput", False), chaos=False),
    ])  # fmt: skip
    assert score.score == 100.0
    assert {i.test for i in score.items} == {"kill"}
    assert len(score.items) == 3  # two SLOs and the test's assertions


def test_weights_follow_severity() -> None:
    # A missed critical SLO costs 4 of 4 + 2 + 1 + 2 (assertions): 5/9 held.
    rec = _test("kill", "failed", _slo("recovery", False, "critical"), _slo("acked", True),
                _slo("vs_baseline", True, "warning"))  # fmt: skip
    score = resilience_score([rec])
    assert score.score == pytest.approx(100 * 5 / 9, abs=0.05)
    assert [i.weight for i in score.items] == [WEIGHTS["critical"], WEIGHTS["error"], WEIGHTS["warning"], 2.0]
    # The test failed through its blocking SLO: its assertions term is not a second miss.
    assert score.items[-1].slo == "assertions"
    assert score.items[-1].passed
    assert "5 of 9" in score.method


def test_a_failure_outside_the_slos_is_a_missed_assertion() -> None:
    # Intensity not reached (an assertion, not an SLO): the warning SLO that missed does not explain it.
    rec = _test("stress", "failed", _slo("registration", True), _slo("vs_baseline", False, "warning"))
    score = resilience_score([rec])
    assert score.items[-1].passed is False
    assert score.score == pytest.approx(100 * 2 / 5, abs=0.05)


def test_scale_runs_count_and_skips_do_not() -> None:
    scaled = TestRecord(nodeid="four", outcome="passed",
                        scale=[ScaleRecord(profile="scale4", namespace="n", window=W, deploy_and_gates_s=1,
                                           backends_ready=4, backend_restarts=0, engine_restarts=0,
                                           engine_oomkilled=False, load="x")])  # fmt: skip
    skipped = _test("skipped", "skipped", _slo("x", False))
    score = resilience_score([scaled, skipped])
    assert [(i.test, i.experiment) for i in score.items] == [("four", "scale4")]
    assert score.score == 100.0


def test_nothing_to_score_is_no_score() -> None:
    assert resilience_score([]).score is None
