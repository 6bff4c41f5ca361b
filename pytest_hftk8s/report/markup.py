"""The small pieces of ``index.html`` every part of the page shares: escaping, numbers, the
anchors of tests' sections, and a figure embedded as a data URI.

Pure string building from typed records; no I/O. It knows neither the page's layout (that is
:mod:`~pytest_hftk8s.report.html`'s) nor how a figure is drawn (that is
:mod:`~pytest_hftk8s.report.canvas`'s and the figure modules').
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Sequence
from typing import Any

from pytest_hftk8s.report.canvas import Plot
from pytest_hftk8s.results import TestRecord

__all__ = ["anchor", "anchors", "embed", "esc", "num", "unique"]


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML (quotes too); ``None`` is empty."""
    return html.escape("" if value is None else str(value))


def num(value: Any, digits: int = 4) -> str:
    """A value as the page shows it: a float to ``digits`` significant digits, a dict as ``k=v`` pairs,
    ``None`` as ``no data``. Not escaped."""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={num(v, digits)}" for k, v in value.items())
    return "no data" if value is None else str(value)


def anchor(nodeid: str) -> str:
    """The id of a test's section in ``index.html``: readable, stable across runs, unique per node id."""
    readable = "".join(
        c if c.isascii() and (c.isalnum() or c in "_-") else "-" for c in nodeid.split("/")[-1]
    )
    return f"t-{readable[:60].strip('-')}-{hashlib.sha1(nodeid.encode()).hexdigest()[:6]}"


def anchors(tests: Sequence[TestRecord]) -> list[str]:
    """Each test's section id, in order: :func:`anchor`, numbered when the same node id comes twice."""
    return unique([anchor(t.nodeid) for t in tests])


def unique(idents: Sequence[str]) -> list[str]:
    """The ids in order, a repeated one numbered from its second time on: ``x``, ``x-2``, ``x-3``."""
    seen: dict[str, int] = {}
    out = []
    for ident in idents:
        seen[ident] = seen.get(ident, 0) + 1
        out.append(ident if seen[ident] == 1 else f"{ident}-{seen[ident]}")
    return out


def embed(plot: Plot, section: str) -> str:
    """``plot`` as ``<figure id='<section>-<key>'>``: its SVG as a data URI with its title as the
    caption, or, when nothing was drawn, the note that says why."""
    ident = f"{section}-{plot.key}"
    notes = "; ".join(plot.notes)
    if plot.svg is None:
        return f"<figure id='{esc(ident)}' class='empty'><p class='note'><b>{esc(plot.title)}</b>: {esc(notes)}</p></figure>"
    data = base64.b64encode(plot.svg.encode()).decode("ascii")
    caption = esc(plot.title) + (f" <span class='note'>({esc(notes)})</span>" if notes else "")
    return (
        f"<figure id='{esc(ident)}'><img src='data:image/svg+xml;base64,{data}' alt='{esc(plot.title)}'>"
        f"<figcaption>{caption}</figcaption></figure>"
    )
