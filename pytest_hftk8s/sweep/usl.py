"""Gunther's Universal Scalability Law fitted to measured (N, X) points: pure maths, scipy only.

    X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1))

lambda is the throughput of one replica, sigma the contention (the serialised share), kappa the
coherency cost (crosstalk between replicas). The peak is at N* = sqrt((1 - sigma) / kappa), where the
throughput is X_max = X(N*).

The fit is least squares in throughput space (``scipy.optimize.curve_fit``, trust-region reflective,
bounds lambda > 0, 0 <= sigma <= 1, kappa >= 0, started from a few points of a small grid and kept
where the squared error is least), never in Gunther's linearised form, with each residual relative
to its measured X (``sigma=X``): a sweep finds each ceiling to within a relative resolution, so its
error grows with it, and an unweighted fit's intervals then under-cover (kappa's 95% interval held
the truth in 86% of synthetic sweeps with 2% noise; weighted, 94-95% for every parameter). With ``fix_lambda`` lambda is held at the mean
measured X(1) and only sigma and kappa are fitted, to the points with N > 1 (at N = 1 the model
equals lambda whatever sigma and kappa are, so those points carry no information about them and
would only inflate the degrees of freedom).

Confidence intervals (95% by default) come from the fit's covariance: ``curve_fit`` scales it by the
residual variance, and each parameter's interval is estimate +/- t(dof) x its standard error. For the
derived N* and X_max the **delta method** is used: var(g) = grad(g)^T Cov grad(g), with N*'s gradient
in closed form and X_max's by central differences. Every interval is cut to where its parameter can
lie (lambda, N* and X_max above 0, sigma in [0, 1], kappa >= 0): a symmetric interval from few points
reaches past those bounds, and the part beyond them is no possible value. With no degree of freedom
left (as many points as parameters) there is no interval: ``None``. No I/O, no pytest, nothing of the plugin but ``results``
and ``errors``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from pytest_hftk8s.errors import HftError
from pytest_hftk8s.results import UslFit

__all__ = ["FitError", "fit", "n_star", "throughput"]

#: The grid of (sigma, kappa) starting points; the least-squares surface has shallow valleys.
_STARTS = ((0.05, 0.001), (0.3, 0.01), (0.6, 0.05), (0.1, 0.2))


class FitError(HftError, ValueError):
    """The points cannot determine the law (too few, non-positive, not finite)."""


def throughput(n: Any, lam: float, sigma: float, kappa: float) -> Any:
    """X(N) for a number or an array of N (the model ``curve_fit`` sees)."""
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


def n_star(sigma: float, kappa: float) -> float | None:
    """The replica count of peak throughput, sqrt((1 - sigma) / kappa); ``None`` without a peak."""
    if kappa <= 0 or sigma >= 1:
        return None
    return math.sqrt((1.0 - sigma) / kappa)


def fit(
    points: Sequence[tuple[float, float]], *, fix_lambda: bool = False, confidence: float = 0.95
) -> UslFit:
    """The USL through ``points`` ((N, X) pairs, any order, repeats allowed); see the module docstring.

    Raises :class:`FitError` when the points cannot determine it: a non-finite or non-positive N or
    X, fewer distinct N than parameters (3; or 2 besides N = 1 with ``fix_lambda``), or no N = 1 to
    fix lambda to.
    """
    pts = _checked(points, fix_lambda=fix_lambda)
    if not 0 < confidence < 1:
        raise FitError(f"expected a confidence level in (0, 1); got {confidence!r}")
    if fix_lambda:
        ones = [x for n, x in pts if n == 1]
        lam = sum(ones) / len(ones)
        used = [(n, x) for n, x in pts if n != 1]

        def model(n: Any, sigma: float, kappa: float) -> Any:
            return throughput(n, lam, sigma, kappa)

        params, cov = _least_squares(model, used, starts=_STARTS, lower=(0.0, 0.0), upper=(1.0, math.inf))
        estimate = (lam, params[0], params[1])
        cov3 = None if cov is None else [[0.0, 0.0, 0.0], [0.0, *cov[0]], [0.0, *cov[1]]]
        free = 2
    else:
        used = pts
        lam0 = max(x / n for n, x in pts)
        starts = tuple((lam0, s, k) for s, k in _STARTS)
        params, cov3 = _least_squares(
            throughput, used, starts=starts, lower=(1e-12, 0.0, 0.0), upper=(math.inf, 1.0, math.inf)
        )
        estimate = (params[0], params[1], params[2])
        free = 3
    dof = len(used) - free
    lam, sigma, kappa = estimate
    peak = n_star(sigma, kappa)
    out = UslFit(
        lam=lam,
        sigma=sigma,
        kappa=kappa,
        lam_fixed=fix_lambda,
        n_star=peak,
        x_max=None if peak is None else float(throughput(peak, lam, sigma, kappa)),
        points=[(float(n), float(x)) for n, x in pts],
        r_squared=_r_squared(pts, estimate),
        dof=dof,
    )
    if cov3 is None or dof <= 0:
        return out
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, dof))
    domains = ((0.0, math.inf), (0.0, 1.0), (0.0, math.inf))
    intervals = [_interval(value, cov3[i][i], half, domains[i]) for i, value in enumerate(estimate)]
    out.lam_ci = None if fix_lambda else intervals[0]
    out.sigma_ci, out.kappa_ci = intervals[1], intervals[2]
    if peak is not None:
        grad_peak = (0.0, -1.0 / (2.0 * kappa * peak), -peak / (2.0 * kappa))
        out.n_star_ci = _interval(peak, _quadratic(grad_peak, cov3), half, (0.0, math.inf))
        assert out.x_max is not None
        grad_max = _gradient(lambda p: _x_max(*p), estimate)
        out.x_max_ci = _interval(out.x_max, _quadratic(grad_max, cov3), half, (0.0, math.inf))
    return out


def _checked(points: Sequence[tuple[float, float]], *, fix_lambda: bool) -> list[tuple[float, float]]:
    pts = [(float(n), float(x)) for n, x in points]
    bad = [(n, x) for n, x in pts if not (math.isfinite(n) and math.isfinite(x) and n >= 1 and x > 0)]
    if bad:
        raise FitError(
            f"expected every point to have N >= 1 replicas and a finite throughput X > 0; saw {bad}. "
            "Leave out the replica counts where no sustainable rate was found."
        )
    distinct = {n for n, _ in pts}
    if fix_lambda:
        if 1.0 not in distinct:
            raise FitError(
                f"expected a point at N = 1 to fix lambda to X(1); the points have N = {sorted(distinct)}"
            )
        if len(distinct - {1.0}) < 2:
            raise FitError(
                "expected at least 2 replica counts besides N = 1 to fit sigma and kappa with lambda "
                f"fixed; saw N = {sorted(distinct)}"
            )
    elif len(distinct) < 3:
        raise FitError(
            f"expected at least 3 distinct replica counts to fit lambda, sigma and kappa; saw "
            f"N = {sorted(distinct)}"
        )
    return pts


def _least_squares(
    model: Callable[..., Any],
    points: Sequence[tuple[float, float]],
    *,
    starts: Sequence[tuple[float, ...]],
    lower: tuple[float, ...],
    upper: tuple[float, ...],
) -> tuple[list[float], list[list[float]] | None]:
    """The parameters with the least squared error over ``starts``, and their covariance (or None)."""
    from scipy.optimize import OptimizeWarning, curve_fit

    ns = [n for n, _ in points]
    xs = [x for _, x in points]
    best: tuple[float, list[float], list[list[float]] | None] | None = None
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                # No degree of freedom left: curve_fit says the covariance cannot be estimated.
                warnings.simplefilter("ignore", OptimizeWarning)
                popt, pcov = curve_fit(
                    model, ns, xs, p0=p0, sigma=xs, bounds=(lower, upper), method="trf", maxfev=20000
                )
        except (RuntimeError, ValueError):
            continue
        params = [float(v) for v in popt]
        ssr = sum(((x - float(model(n, *params))) / x) ** 2 for n, x in points)
        cov = [[float(v) for v in row] for row in pcov]
        finite = all(math.isfinite(v) for row in cov for v in row)
        if best is None or ssr < best[0]:
            best = (ssr, params, cov if finite else None)
    if best is None:
        raise FitError(f"the least-squares fit did not converge from any starting point for {points}")
    return best[1], best[2]


def _x_max(lam: float, sigma: float, kappa: float) -> float:
    peak = n_star(sigma, kappa)
    return math.nan if peak is None else float(throughput(peak, lam, sigma, kappa))


def _gradient(
    g: Callable[[tuple[float, float, float]], float], at: tuple[float, float, float]
) -> list[float]:
    out = []
    for i, value in enumerate(at):
        h = 1e-6 * max(abs(value), 1e-6)
        up, down = list(at), list(at)
        up[i], down[i] = value + h, value - h
        out.append((g((up[0], up[1], up[2])) - g((down[0], down[1], down[2]))) / (2 * h))
    return out


def _quadratic(grad: Sequence[float], cov: Sequence[Sequence[float]]) -> float:
    return sum(grad[i] * cov[i][j] * grad[j] for i in range(3) for j in range(3))


def _interval(
    value: float, variance: float, half: float, domain: tuple[float, float]
) -> tuple[float, float] | None:
    if not math.isfinite(variance) or variance < 0:
        return None
    spread = half * math.sqrt(variance)
    return (max(domain[0], value - spread), min(domain[1], value + spread))


def _r_squared(points: Sequence[tuple[float, float]], params: tuple[float, float, float]) -> float | None:
    mean = sum(x for _, x in points) / len(points)
    total = sum((x - mean) ** 2 for _, x in points)
    if total <= 0:
        return None
    residual = sum((x - float(throughput(n, *params))) ** 2 for n, x in points)
    return 1.0 - residual / total
