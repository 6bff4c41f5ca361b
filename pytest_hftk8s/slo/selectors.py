"""Which series a PromQL expression needs in order to be judged, parsed with ``promql-parser``.

An alert that stays silent only means something if the series it reads exist: ``up{job="x"} == 0``
is silent both when the target is up and when it was never scraped. :func:`required` walks the
expression: both sides of ``and`` and of arithmetic or comparisons are needed, only the left side
of ``unless``, either side of ``or``, and nothing inside ``absent()``/``absent_over_time()`` (those
alert *because* a series is missing). :func:`missing` asks Prometheus which needed selectors had no
series in the window. Parsing and one bounded query per selector; it judges nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pytest_hftk8s.results import Window
from pytest_hftk8s.slo.prom import PromClient

_ABSENCE = frozenset({"absent", "absent_over_time"})
_MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


@dataclass(frozen=True)
class Need:
    """``all`` of / ``any`` of the parts, or one selector."""

    op: str  # "all" | "any" | "selector"
    parts: tuple[Need, ...] = ()
    selector: str = ""


def required(expr: str) -> Need:
    """The selectors ``expr`` needs; raises ``ValueError`` naming the parse error."""
    import promql_parser

    try:
        tree = promql_parser.parse(expr)
    except Exception as e:  # the binding raises its own type for syntax errors
        raise ValueError(f"the expression is not valid PromQL: {e}") from e
    return _need(tree)


def _need(node: object) -> Need:
    import promql_parser as p

    if isinstance(node, p.VectorSelector):
        return Need("selector", selector=_selector_text(node))
    if isinstance(node, p.MatrixSelector):
        return _need(node.vector_selector)
    if isinstance(node, p.BinaryExpr):
        op = str(node.op)
        if op == "unless":
            return _need(node.lhs)
        return Need("any" if op == "or" else "all", (_need(node.lhs), _need(node.rhs)))
    if isinstance(node, p.Call):
        if node.func.name in _ABSENCE:
            return Need("all")
        return Need("all", tuple(_need(a) for a in node.args))
    if isinstance(node, p.AggregateExpr | p.ParenExpr | p.UnaryExpr | p.SubqueryExpr):
        return _need(node.expr)
    return Need("all")  # number and string literals need nothing


def _selector_text(node: Any) -> str:
    r"""``node`` as PromQL again, its label values quoted and escaped.

    The binding's ``str(matchers)`` prints values unescaped (``pod=~"a-\\d+"`` comes back as
    ``pod=~"a-\d+"``, which Prometheus rejects), so the text is rebuilt from the matchers.
    """
    groups = node.matchers.or_matchers or [node.matchers.matchers]
    inner = " or ".join(",".join(_matcher_text(m) for m in group) for group in groups if group)
    return (node.name or "") + (f"{{{inner}}}" if inner else "")


def _matcher_text(matcher: Any) -> str:
    op = _MATCH_OPS[str(matcher.op).rsplit(".", 1)[-1]]
    # A JSON string is a valid PromQL (Go) double-quoted string: \\, \", \n, \t, \uXXXX.
    return f"{matcher.name}{op}{json.dumps(matcher.value, ensure_ascii=False)}"


def selectors(need: Need) -> list[str]:
    if need.op == "selector":
        return [need.selector]
    return [s for part in need.parts for s in selectors(part)]


def missing(need: Need, client: PromClient, *, window: Window) -> list[str]:
    """Needed selectors without any series in ``window`` (empty when the need is met)."""
    seen: dict[str, bool] = {}

    def exists(selector: str) -> bool:
        if selector not in seen:
            value = client.scalar(
                f"count(present_over_time({selector}[{window.promql_range_wide}]))", at=window.end
            )
            seen[selector] = value is not None and value > 0
        return seen[selector]

    def unmet(n: Need) -> list[str]:
        if n.op == "selector":
            return [] if exists(n.selector) else [n.selector]
        results = [unmet(part) for part in n.parts]
        if n.op == "any" and results:
            return [] if any(not r for r in results) else [s for r in results for s in r]
        return [s for r in results for s in r]

    return unmet(need)


def describe(need: Need) -> str:
    if need.op == "selector":
        return need.selector
    inner = [describe(p) for p in need.parts]
    inner = [i for i in inner if i]
    if not inner:
        return ""
    return inner[0] if len(inner) == 1 else f"{need.op}({', '.join(inner)})"
