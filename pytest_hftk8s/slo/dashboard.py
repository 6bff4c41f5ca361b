"""The Grafana dashboard's SLO panels and the links to them: one table shared by the dashboard source
(``dashboards/platform.dashboard.py``) and the SLO failure messages.

Each built-in SLO that Prometheus judges has one panel with a stable id, its query (the SLO's own
expression with Grafana's ranges) and its threshold, taken from the built-in's default, so the line
drawn on the panel is the bound the bundled suites assert. The client-side p99
(``builtin.client_p99_latency``) is measured by the load generator, not scraped by Prometheus, so it
has no panel; the server-side p99 panel is the closest Prometheus view of it. Pure data and string
building: no I/O, no Grafana and no grafanalib here.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_hftk8s.results import SloResult, Window
from pytest_hftk8s.slo import builtin, queries
from pytest_hftk8s.slo.model import Slo

DASHBOARD_UID = "hftk8s-platform"
DASHBOARD_TITLE = "pytest-hftk8s: HFT platform"
#: What Grafana fills every range with in a dashboard (the SLOs use the test's window instead).
GRAFANA_RANGE = "$__rate_interval"
#: The throughput ratio needs the test's offered rate, which only the load generator knows: the
#: dashboard has it as a variable (NaN until set, so no ratio is drawn against a made-up rate) and
#: an SLO link fills it in.
OFFERED_RATE_VARIABLE = "offered_rate"
OFFERED_RATE_UNSET = "NaN"


@dataclass(frozen=True)
class SloPanel:
    """One SLO's panel: ``panel_id`` is stable (links target it), ``slo`` carries query and bound."""

    panel_id: int
    title: str
    slo: Slo
    unit: str  # a Grafana unit id

    @property
    def name(self) -> str:
        return self.slo.name

    @property
    def expr(self) -> str:
        """The SLO's expression as the dashboard runs it (``$namespace``, ``$offered_rate`` stay variables)."""
        return queries.render(self.slo.expr, {"window": GRAFANA_RANGE, "window_wide": GRAFANA_RANGE})

    @property
    def threshold(self) -> float:
        return float(self.slo.threshold)

    def threshold_steps(self) -> list[dict[str, Any]]:
        """Grafana threshold steps: one red step at the SLO's bound, drawn as a line on the panel."""
        return [{"color": "transparent", "value": None}, {"color": "red", "value": self.threshold}]


#: The built-in PromQL SLOs, in the order of ``builtin.baseline()``, each from its constructor's
#: defaults (the bounds of the bundled suites; ``--hft-baseline-p99-ms`` has the same default).
SLO_PANELS: tuple[SloPanel, ...] = (
    SloPanel(101, "Throughput: accepted of offered", builtin.throughput(), "percentunit"),
    SloPanel(102, "Registration success", builtin.registration_success(), "percentunit"),
    SloPanel(103, "Order latency p99 (server side)", builtin.p99_latency(), "ms"),
    SloPanel(104, "Containers in CrashLoopBackOff", builtin.no_crashloop(), "none"),
    SloPanel(105, "Container restarts", builtin.bounded_restarts(), "none"),
    SloPanel(106, "Containers last terminated OOMKilled", builtin.no_oomkilled(), "none"),
)
_BY_NAME = {p.name: p for p in SLO_PANELS}


def slug(title: str) -> str:
    """Grafana's URL slug of a dashboard title (lower case, runs of other characters become ``-``)."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


DASHBOARD_SLUG = slug(DASHBOARD_TITLE)


def panel_for(name: str) -> SloPanel | None:
    """The panel of the SLO called ``name``, if it has one."""
    return _BY_NAME.get(name)


def panel_url(
    base_url: str, name: str, window: Window, *, namespace: str, variables: Mapping[str, Any] | None = None
) -> str | None:
    """``<base>/d/<uid>/<slug>?viewPanel=<id>&from=<ms>&to=<ms>&var-namespace=<ns>``, or None when
    the SLO has no panel. ``variables`` adds dashboard variables (e.g. ``offered_rate``)."""
    panel = panel_for(name)
    if panel is None:
        return None
    params: list[tuple[str, str]] = [
        ("viewPanel", str(panel.panel_id)),
        ("from", str(round(window.start * 1000))),
        ("to", str(round(window.end * 1000))),
        ("var-namespace", namespace),
    ]
    params += [(f"var-{k}", str(v)) for k, v in sorted((variables or {}).items())]
    return f"{base_url.rstrip('/')}/d/{DASHBOARD_UID}/{DASHBOARD_SLUG}?{urllib.parse.urlencode(params)}"


@dataclass(frozen=True)
class PanelLinks:
    """Where a failed SLO's panel is: on a Grafana (``grafana_url``) or in the report's dashboards.

    Without a Grafana URL the message names the panel and the dashboard JSON the report directory
    carries (``dashboard_json``, its path), which can be imported into any Grafana.
    """

    namespace: str
    grafana_url: str | None = None
    dashboard_json: str = ""

    def line(self, result: SloResult) -> str:
        """The message line pointing at ``result``'s panel for its window, or "" when it has none."""
        panel = panel_for(result.name)
        if panel is None:
            return ""
        if self.grafana_url:
            offered = _offered_rate(result.query, panel)
            url = panel_url(
                self.grafana_url, result.name, result.window, namespace=self.namespace,
                variables={OFFERED_RATE_VARIABLE: offered} if offered else None,
            )  # fmt: skip
            return f"dashboard: {url}"
        where = self.dashboard_json or f"the dashboard {DASHBOARD_UID}"
        return (
            f"dashboard: panel {panel.panel_id} ({panel.title}) of {where}, "
            f"{round(result.window.start * 1000)}..{round(result.window.end * 1000)} ms; "
            "pass --hft-grafana-url to get a link"
        )


def _offered_rate(query: str, panel: SloPanel) -> str:
    """The offered rate a rendered throughput query divided by (the dashboard cannot know it)."""
    if "$" + OFFERED_RATE_VARIABLE not in panel.slo.expr:
        return ""
    found = re.search(r"\)\s*/\s*([0-9.eE+-]+)\s*$", query)
    return found.group(1) if found else ""
