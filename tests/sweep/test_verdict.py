"""The sweep's conclusion: the knee, the points the fit uses, and the sentence with its numbers."""

from __future__ import annotations

from pytest_hftk8s.results import Bottleneck, SweepPoint, SweepResult
from pytest_hftk8s.sweep.usl import fit
from pytest_hftk8s.sweep.verdict import fit_points, knee, sentence


def _points() -> list[SweepPoint]:
    return [
        SweepPoint(backends=1, max_rate=2700.0, throughput=2653.0),
        SweepPoint(backends=4, max_rate=3200.0, throughput=3163.0),
        SweepPoint(backends=8, max_rate=2700.0, throughput=2689.0),
        SweepPoint(backends=16, max_rate=None, throughput=None, budget_exhausted=True),
    ]


def test_knee_and_fit_points_leave_out_what_found_no_rate() -> None:
    points = _points()
    assert fit_points(points) == [(1.0, 2653.0), (4.0, 3163.0), (8.0, 2689.0)]
    top = knee(points)
    assert top is not None
    assert top.backends == 4
    assert knee([SweepPoint(backends=1, max_rate=None, throughput=None)]) is None


def test_sentence_gives_ceiling_fit_budget_and_bottleneck() -> None:
    points = _points()
    result = SweepResult(points=points, fit=fit(fit_points(points), fix_lambda=True), budget_s=900)
    saturated = Bottleneck(verdict="node", sentence="saturated: node CPU (1.97 of 2 cores)")
    text = sentence(result, bottleneck=saturated)
    assert text.startswith("ceiling 3,163 requests/s (offered 3,200/s) at N=4; ")
    assert "lambda 2,653/s (fixed to X(1)), sigma 0.585, kappa 0.0499, N* ≈ 2.9, X_max ≈ 3,223/s" in text
    assert "time budget (900 s) ran out at N=16" in text
    assert text.endswith("; saturated: node CPU (1.97 of 2 cores)")


def test_sentence_says_why_there_is_no_fit() -> None:
    result = SweepResult(points=[SweepPoint(backends=1, max_rate=None, throughput=None)])
    text = sentence(result, why_no_fit="expected at least 3 distinct replica counts")
    assert (
        text
        == "no replica count sustained any probed rate; no USL fit: expected at least 3 distinct replica counts"
    )
