"""The Universal Scalability Law fit: the field report's own numbers, a synthetic curve with known
parameters (recovered, and its confidence intervals covering the truth as often as they claim), and
input that cannot determine the law."""

from __future__ import annotations

import math
import random

import pytest

from pytest_hftk8s.sweep.usl import FitError, fit, n_star, throughput

# The field report: 1 backend 2,653 orders/s, 4 backends 3,163, 8 backends 2,689.
FIELD_REPORT = [(1, 2653.0), (4, 3163.0), (8, 2689.0)]


def test_field_report_numbers_with_lambda_fixed_to_x1() -> None:
    # Three points, two free parameters besides lambda = X(1): the curve passes through all of
    # them, so least squares in throughput space and Gunther's linearised form agree exactly.
    f = fit(FIELD_REPORT, fix_lambda=True)
    assert f.lam == 2653.0
    assert f.lam_fixed
    assert f.sigma == pytest.approx(0.585, abs=0.001)
    assert f.kappa == pytest.approx(0.0499, abs=0.0002)
    assert f.n_star == pytest.approx(2.88, abs=0.01)  # the report's "N* ≈ 2.9"
    assert f.x_max == pytest.approx(3223, abs=2)
    for n, x in FIELD_REPORT:
        assert throughput(n, f.lam, f.sigma, f.kappa) == pytest.approx(x, rel=1e-6)
    # No degree of freedom is left, so the fit claims no interval rather than an invented one.
    assert f.sigma_ci is None
    assert f.kappa_ci is None
    assert f.n_star_ci is None


def test_field_report_numbers_with_lambda_fitted_agree() -> None:
    f = fit(FIELD_REPORT)
    assert not f.lam_fixed
    assert f.lam == pytest.approx(2653, rel=1e-4)
    assert f.sigma == pytest.approx(0.585, abs=0.001)
    assert f.kappa == pytest.approx(0.0499, abs=0.0002)
    assert f.r_squared == pytest.approx(1.0)


LAM, SIGMA, KAPPA = 1000.0, 0.05, 0.002
NS = (1, 2, 4, 8, 12, 16, 24, 32)


def _noisy(seed: int, noise: float) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(n, throughput(n, LAM, SIGMA, KAPPA) * (1 + rng.gauss(0, noise))) for n in NS]


def test_synthetic_curve_is_recovered_with_intervals_covering_the_truth() -> None:
    f = fit(_noisy(seed=7, noise=0.01))
    truth_peak = n_star(SIGMA, KAPPA)
    assert truth_peak is not None
    assert f.lam == pytest.approx(LAM, rel=0.05)
    assert f.sigma == pytest.approx(SIGMA, abs=0.01)
    assert f.kappa == pytest.approx(KAPPA, rel=0.1)
    assert f.n_star == pytest.approx(truth_peak, rel=0.1)
    for ci, truth in ((f.lam_ci, LAM), (f.sigma_ci, SIGMA), (f.kappa_ci, KAPPA), (f.n_star_ci, truth_peak)):
        assert ci is not None
        assert ci[0] < truth < ci[1]
    assert f.x_max_ci is not None
    assert f.x_max_ci[0] < f.x_max < f.x_max_ci[1]


def test_intervals_cover_the_truth_about_as_often_as_they_claim() -> None:
    # 95% intervals over 200 independent sweeps with 2% relative noise: an interval that is too
    # narrow (a covariance not scaled by the residual variance, a normal quantile with 5 degrees of
    # freedom, an unweighted fit of relative noise: kappa 173/200) covers less; binomial(200, 0.95)
    # lies in [181, 197] with probability > 99.9%.
    truth_peak = n_star(SIGMA, KAPPA)
    covered = {"sigma": 0, "kappa": 0, "n_star": 0}
    runs = 200
    for seed in range(runs):
        f = fit(_noisy(seed=1000 + seed, noise=0.02))
        assert f.sigma_ci is not None
        assert f.kappa_ci is not None
        assert f.n_star_ci is not None
        covered["sigma"] += f.sigma_ci[0] <= SIGMA <= f.sigma_ci[1]
        covered["kappa"] += f.kappa_ci[0] <= KAPPA <= f.kappa_ci[1]
        covered["n_star"] += f.n_star_ci[0] <= truth_peak <= f.n_star_ci[1]
    for name, count in covered.items():
        assert 181 <= count <= 197, f"{name}: the 95% interval covered the truth in {count}/{runs} sweeps"


def test_no_peak_without_coherency_cost() -> None:
    points = [(n, throughput(n, 500.0, 0.1, 0.0)) for n in (1, 2, 4, 8)]
    f = fit(points)
    assert f.kappa == pytest.approx(0.0, abs=1e-6)
    assert f.n_star is None or f.n_star > 100
    assert n_star(0.1, 0.0) is None


@pytest.mark.parametrize(
    ("points", "kwargs", "message"),
    [
        ([(1, 100.0), (2, 180.0)], {}, "at least 3 distinct replica counts"),
        ([(1, 100.0), (1, 101.0), (2, 180.0), (2, 181.0)], {}, "at least 3 distinct replica counts"),
        ([(1, 100.0), (2, 0.0), (4, 300.0)], {}, "finite throughput X > 0"),
        ([(1, 100.0), (2, float("nan")), (4, 300.0)], {}, "finite throughput X > 0"),
        ([(0, 100.0), (2, 150.0), (4, 300.0)], {}, "N >= 1"),
        ([(2, 180.0), (4, 300.0), (8, 350.0)], {"fix_lambda": True}, "a point at N = 1"),
        ([(1, 100.0), (4, 300.0)], {"fix_lambda": True}, "at least 2 replica counts besides N = 1"),
    ],
)
def test_degenerate_input_is_a_clear_error(points, kwargs, message) -> None:
    with pytest.raises(FitError, match=message):
        fit(points, **kwargs)


def test_intervals_from_few_noisy_points_stay_where_the_parameters_can_lie() -> None:
    # This machine's first -m sweep (2 cores, generator and an idle platform beside the swept one):
    # N=2 below N=1, N=4 above both. One degree of freedom: the raw intervals reach below zero.
    result = fit([(1, 590.1), (2, 558.0), (4, 966.3), (8, 728.3)])
    assert result.dof == 1
    for interval, low, high in (
        (result.lam_ci, 0.0, math.inf), (result.sigma_ci, 0.0, 1.0), (result.kappa_ci, 0.0, math.inf),
        (result.n_star_ci, 0.0, math.inf), (result.x_max_ci, 0.0, math.inf),
    ):  # fmt: skip
        assert interval is not None
        assert low <= interval[0] <= interval[1] <= high
    assert result.sigma_ci == (0.0, 1.0)  # cut on both sides: the points do not pin sigma down at all
