"""What every figure of the report is drawn on: a :class:`Plot` record, a matplotlib ``Figure`` with
fixed margins, its SVG text, the legend, and the filters a figure's values go through.

matplotlib is imported lazily (it costs about a second) and driven through ``Figure`` and the SVG
canvas directly, never ``pyplot``: no global figure manager, no backend switch, nothing left behind
in the user's matplotlib. This module draws nothing itself and reads no records.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["WIDTH_IN", "Plot", "Values", "figure", "finite", "has_data", "legend", "to_svg"]

WIDTH_IN = 8.0
_RC = {"svg.fonttype": "none", "svg.hashsalt": "pytest-hftk8s", "font.size": 8.0, "axes.titlesize": 9.0}

# Plain lists: matplotlib takes them, and the plugin declares no numpy.
Values = list[float]


@dataclass(frozen=True)
class Plot:
    """One figure of the report: ``key`` is unique within its test (``throughput``, ``latency``,
    ``resources``, ``recovery-0``, ``oom-1``, ``usl``); ``svg`` is ``None`` when there was nothing to
    draw, and ``notes`` then say why (otherwise they name what was missing from a drawn figure)."""

    key: str
    title: str
    svg: str | None
    notes: tuple[str, ...] = ()


def finite(v: Values) -> Values:
    return [x for x in v if math.isfinite(x)]


def has_data(v: Values) -> bool:
    return any(math.isfinite(x) for x in v)


def figure(height_in: float, *, right: float = 0.76, hspace: float = 0.1, wspace: float = 0.2) -> Figure:
    """A figure with fixed margins (in inches where it matters): a layout engine would cost about
    half of the drawing time, and these figures have known shapes. ``right`` leaves room for a
    legend beside the axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height_in))
    fig.subplots_adjust(left=0.7 / WIDTH_IN, right=right, bottom=0.45 / height_in, top=1 - 0.32 / height_in,
                        hspace=hspace, wspace=wspace)  # fmt: skip
    return fig


def to_svg(fig: Figure, title: str) -> str:
    """``fig`` as compact SVG text, reproducible (no date, a fixed hash salt) and with text as text."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Title": title})
    return _compact(buf.getvalue())


_COORDS = re.compile(r'(?<![-\w:])(?:d|x|y|width|height)="[^"]*"')
_DECIMALS = re.compile(r"(-?\d+)\.(\d)\d*")


def _compact(svg: str) -> str:
    """A smaller SVG that draws the same: coordinates to 0.1 pt (matplotlib writes six decimals), no
    RDF metadata, no indentation between tags. Text content is left alone."""
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)

    def short(m: re.Match[str]) -> str:
        attr = _DECIMALS.sub(lambda n: n[1] if n[2] == "0" else f"{n[1]}.{n[2]}", m[0])
        return " ".join(attr.split())

    return re.sub(r">\s+<", "><", _COORDS.sub(short, svg))


def legend(ax: Axes, *, outside: bool = True) -> None:
    """The axes' legend, if it has labelled artists: beside the axes, or inside where it fits best."""
    handles, labels = ax.get_legend_handles_labels()
    if handles and outside:  # beside the axes, never over the data
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6.5, frameon=False)
    elif handles:
        ax.legend(handles, labels, loc="best", fontsize=6.5, framealpha=0.8)
