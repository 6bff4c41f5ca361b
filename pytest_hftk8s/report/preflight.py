"""The preflight table as text: one row per check, what was found, and what to do.

Pure formatting of :class:`~pytest_hftk8s.results.PreflightCheck` rows; the same table is printed at
the start of a session, by ``--hft-preflight``, and in the message of a session that stops on a
missing prerequisite. It must not run checks or know a backend.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from pytest_hftk8s.results import PreflightCheck

_STATUS = {(True, True): "ok", (True, False): "ok", (False, True): "FAIL", (False, False): "warn"}
_WIDTHS = (30, 4, 44)  # check, status, found; what to do takes the rest of the line


def failed(rows: Sequence[PreflightCheck]) -> list[PreflightCheck]:
    """The rows that stop a session: blocking checks that did not pass."""
    return [r for r in rows if r.blocking and not r.ok]


def format_table(rows: Sequence[PreflightCheck], *, title: str = "preflight") -> str:
    """A fixed-width table; long cells wrap inside their column, so commands stay copyable."""
    header = ("check", "", "found", "what to do")
    lines = [title, _row(header), _row(tuple("-" * w for w in (*_WIDTHS, 10)))]
    for r in rows:
        lines.append(_row((r.check, _STATUS[(r.ok, r.blocking)], r.found, "" if r.ok else r.action)))
    bad = failed(rows)
    warn = [r for r in rows if not r.ok and not r.blocking]
    summary = f"{len(rows) - len(bad) - len(warn)} ok, {len(warn)} warning(s), {len(bad)} failed"
    lines.append(summary)
    return "\n".join(lines)


def _row(cells: tuple[str, ...]) -> str:
    wrapped = [
        textwrap.wrap(cell, width, break_on_hyphens=False) or [""]
        for cell, width in zip(cells[:3], _WIDTHS, strict=True)
    ]
    action = [line for line in cells[3].splitlines() if line] or [""]
    height = max(len(w) for w in (*wrapped, action))
    out = []
    for i in range(height):
        left = "  ".join(
            (w[i] if i < len(w) else "").ljust(width) for w, width in zip(wrapped, _WIDTHS, strict=True)
        )
        out.append(f"{left}  {action[i] if i < len(action) else ''}".rstrip())
    return "\n".join(out)
