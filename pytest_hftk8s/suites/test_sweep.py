"""Scaling sweep (marker ``sweep``; deselected unless ``-m sweep`` or ``--hft-sweep``): where is the
ceiling, and how does it move with the number of backends?

At each N of ``--hft-sweep-backends`` (default 1, 2, 4, 8) a platform with N backends is deployed
beside the session's and the highest open-loop rate it sustains is searched (doubling, then
bisecting to within 10%), where sustainable means what the baseline's desk signs: client-side p99
<= ``--hft-sweep-p99-ms`` (100 ms), accepted orders >= ``--hft-sweep-min-ratio`` (95%) of the offered
ones, and a valid generator run. The Universal Scalability Law is fitted to the ceilings (lambda,
sigma, kappa, N*, X_max with 95% confidence intervals) and the saturated component at the knee is
named. Everything lands in ``<report dir>/sweep.json`` and the test's record; the sentence is a
JUnit property.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.sweep


def _why(point) -> str:
    if point.budget_exhausted and not point.probes:
        return "the time budget ran out before it was deployed"
    lowest = min(point.probes, key=lambda p: p.offered_rate, default=None)
    reasons = "; ".join(lowest.reasons) if lowest else "no probe ran"
    budget = " (the time budget ran out)" if point.budget_exhausted else ""
    return f"even {lowest.offered_rate:g}/s was not sustainable: {reasons}{budget}" if lowest else reasons


def test_scaling_sweep_and_usl_fit(hft_sweep, hft_settings, record_property):
    result = hft_sweep.run()
    record_property("hft_sweep", result.sentence)
    print(f"\n{result.sentence}")
    assert [p.backends for p in result.points] == list(hft_settings.sweep_backends)
    missing = {p.backends: _why(p) for p in result.points if p.max_rate is None}
    assert not missing, f"no sustainable rate found at N = {sorted(missing)}: {missing}"
    for point in result.points:
        assert any(p.sustainable and p.offered_rate == point.max_rate for p in point.probes), point
    if len(result.points) >= 3:
        assert result.fit is not None, f"expected a USL fit of {len(result.points)} points: {result.sentence}"
        assert result.fit.lam > 0
        assert 0 <= result.fit.sigma <= 1
        assert result.fit.kappa >= 0
    assert result.knee in [p.backends for p in result.points]
    assert (hft_settings.report_dir / "sweep.json").is_file()
