"""A scaling sweep's figure: the highest sustainable throughput measured per replica count against
the fitted Universal Scalability Law curve, with N* (and its interval) marked.

Reads :mod:`pytest_hftk8s.results` only and draws on :mod:`~pytest_hftk8s.report.canvas`; the
sweep's tables are :mod:`~pytest_hftk8s.report.html`'s.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pytest_hftk8s.report.canvas import Plot, figure, finite, legend, to_svg
from pytest_hftk8s.results import SweepResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["usl_plot"]


def usl_plot(sweep: SweepResult) -> Plot:
    """Measured sustainable throughput per replica count against the fitted USL curve, N* marked."""
    title = "Scaling: measured throughput vs the Universal Scalability Law fit"
    measured = [(p.backends, p.throughput) for p in sweep.points if p.throughput is not None]
    none = [p.backends for p in sweep.points if p.throughput is None]
    fit = sweep.fit
    if not measured and (fit is None or not fit.points):
        at = f" (no sustainable rate at N={', '.join(str(n) for n in none)})" if none else ""
        return Plot("usl", title, None, (f"nothing to plot: no sustainable throughput was measured{at}",))
    fig = figure(3.4, right=0.97)
    ax = fig.add_subplot()
    notes: list[str] = []
    n_max = max([n for n, _ in measured] + [n for n, _ in (fit.points if fit else [])] + none + [1])
    if fit is not None:
        top = max(n_max * 1.25, (fit.n_star or 0) * 1.5, 2.0)
        n = [1.0 + (top - 1.0) * k / 199 for k in range(200)]
        x = [fit.lam * m / (1.0 + fit.sigma * (m - 1.0) + fit.kappa * m * (m - 1.0)) for m in n]
        ax.plot(n, x, color="#1f77b4", lw=1.5, gid="usl-curve",
                label=f"USL: λ={fit.lam:,.0f} σ={fit.sigma:.3g} κ={fit.kappa:.3g}")  # fmt: skip
        cap = max(*finite(x), *(x_i for _, x_i in measured), 1.0) * 1.3
        linear = [(m, fit.lam * m) for m in n if fit.lam * m <= cap]
        ax.plot(
            [m for m, _ in linear], [y for _, y in linear], color="#7f7f7f", lw=0.8, ls=":", label="linear λN"
        )
        ax.set_ylim(0, cap)
        if fit.n_star is not None and math.isfinite(fit.n_star):
            ax.axvline(fit.n_star, color="#d62728", ls="--", lw=1.0, gid="usl-nstar")
            label = f"N* ≈ {fit.n_star:.1f}" + (f", X_max ≈ {fit.x_max:,.0f}/s" if fit.x_max else "")
            ax.text(fit.n_star, 0.04, " " + label, transform=_blend(ax), rotation=90, va="bottom", ha="left",
                    color="#d62728", fontsize=7.5)  # fmt: skip
            if fit.n_star_ci is not None:
                a, b = fit.n_star_ci
                ax.axvspan(max(a, 0.0), b, color="#d62728", alpha=0.08, lw=0, label="N* 95% CI")
        if fit.x_max is not None:
            ax.axhline(fit.x_max, color="#d62728", ls=":", lw=0.7)
    else:
        notes.append("no USL fit (too few points, or the fit failed)")
    if measured:
        ns, xs = zip(*measured, strict=True)
        ax.plot(ns, xs, "o", color="#ff7f0e", ms=6, mec="#333333", mew=0.6, label="measured (highest sustainable)",
                gid="usl-points")  # fmt: skip
        for n_i, x_i in measured:
            ax.annotate(f"{x_i:,.0f}", (n_i, x_i), textcoords="offset points", xytext=(4, 5), fontsize=7)
    if sweep.knee is not None:
        knee = next((x for n_i, x in measured if n_i == sweep.knee), None)
        if knee is not None:
            ax.plot(
                [sweep.knee],
                [knee],
                marker="*",
                color="#d62728",
                ms=12,
                ls="none",
                label=f"knee N={sweep.knee}",
            )
    if none:
        ax.plot(none, [0.0] * len(none), "x", color="#d62728", ms=7, label="no sustainable rate")
        notes.append("no sustainable rate at N=" + ", ".join(str(n) for n in none))
    ax.set_xlabel("backends (N)")
    ax.set_ylabel("orders/s")
    ax.set_xlim(0.5, None)
    if fit is None:
        ax.set_ylim(bottom=0)
    ax.grid(True, lw=0.3, alpha=0.6)
    legend(ax, outside=False)
    ax.set_title(title, loc="left")
    return Plot("usl", title, to_svg(fig, title), tuple(notes))


def _blend(ax: Axes) -> Any:
    from matplotlib.transforms import blended_transform_factory

    return blended_transform_factory(ax.transData, ax.transAxes)
