"""The sweep's conclusion: the knee, which points the fit may use, and the sentence people read.

For example: "ceiling 412 requests/s at N=2; USL: lambda 236/s, sigma 0.31, kappa 0.052, N* ≈ 3.7
(95% CI 2.9 to 4.6), X_max ≈ 420/s; saturated: node CPU (1.97 of 2 cores) ...", the last part being
the bottleneck attribution's own sentence at the knee. Pure: typed records in, text out.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_hftk8s.results import Bottleneck, SweepPoint, SweepResult, UslFit

__all__ = ["fit_points", "knee", "sentence"]


def fit_points(points: Sequence[SweepPoint]) -> list[tuple[float, float]]:
    """(N, X) of every point that found a sustainable rate: what the USL is fitted to."""
    return [(float(p.backends), p.throughput) for p in points if p.max_rate is not None and p.throughput]


def knee(points: Sequence[SweepPoint]) -> SweepPoint | None:
    """The point with the highest measured sustainable throughput (the fewest replicas on a tie)."""
    found = [p for p in points if p.throughput]
    return max(found, key=lambda p: (p.throughput, -p.backends)) if found else None


def _ci(interval: tuple[float, float] | None, fmt: str) -> str:
    return "" if interval is None else f" (95% CI {interval[0]:{fmt}} to {interval[1]:{fmt}})"


def _fit_text(fit: UslFit) -> str:
    text = (
        f"USL: lambda {fit.lam:,.0f}/s{' (fixed to X(1))' if fit.lam_fixed else _ci(fit.lam_ci, ',.0f')}, "
        f"sigma {fit.sigma:.3f}{_ci(fit.sigma_ci, '.3f')}, kappa {fit.kappa:.4f}{_ci(fit.kappa_ci, '.4f')}"
    )
    if fit.n_star is None or fit.x_max is None:
        text += ", no peak (kappa = 0: throughput never falls with more replicas)"
    else:
        text += (
            f", N* ≈ {fit.n_star:.1f}{_ci(fit.n_star_ci, '.1f')}, "
            f"X_max ≈ {fit.x_max:,.0f}/s{_ci(fit.x_max_ci, ',.0f')}"
        )
    if fit.dof == 1:
        text += " (1 degree of freedom: the intervals say little; more replica counts narrow them)"
    if fit.r_squared is not None and fit.r_squared < 0.5:
        text += f" (R² {fit.r_squared:.2f}: the points follow the law poorly)"
    return text


def sentence(result: SweepResult, *, bottleneck: Bottleneck | None = None, why_no_fit: str = "") -> str:
    """One sentence with the numbers: the ceiling, the fit (or why there is none), what saturated."""
    top = knee(result.points)
    if top is None or top.throughput is None:
        parts = ["no replica count sustained any probed rate"]
    else:
        parts = [
            f"ceiling {top.throughput:,.0f} requests/s (offered {top.max_rate:,.0f}/s) at N={top.backends}"
        ]
    if result.fit is not None:
        parts.append(_fit_text(result.fit))
    elif why_no_fit:
        parts.append(f"no USL fit: {why_no_fit}")
    exhausted = [p.backends for p in result.points if p.budget_exhausted]
    if exhausted:
        parts.append(f"time budget ({result.budget_s:.0f} s) ran out at N={', '.join(map(str, exhausted))}")
    if bottleneck is not None:
        parts.append(bottleneck.sentence)
    return "; ".join(parts)
