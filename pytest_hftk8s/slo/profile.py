"""Where SLOs come from: ``@pytest.mark.hft_slo(...)`` kwargs and YAML alert profiles.

The YAML file follows kube-burner / krkn alert profiles: a list of entries with ``expr``,
``description`` and ``severity``, each an :class:`~.model.Alert` that fires when its expression
returns any sample in the test's window (``up{job="x"} == 0``, ``rate(...) > 0``, ``a and b``,
``a unless b`` all work as in kube-burner). Entries may instead give ``comparator`` and
``threshold`` (and a ``name``): those are plain SLOs on the expression's value. Every expression
is parsed when the file is loaded, so a typo is a usage error before anything is deployed.
Parsing only: no I/O but reading the file, no Prometheus.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_hftk8s.errors import ConfigError
from pytest_hftk8s.slo.builtin import BUILTINS, builtin
from pytest_hftk8s.slo.model import Alert, Check, Slo
from pytest_hftk8s.slo.queries import render
from pytest_hftk8s.slo.selectors import required

_KEYS = {"name", "expr", "description", "severity", "comparator", "threshold", "unit", "for", "step"}
#: Placeholder values that let an expression with ``$window`` & co. be parsed when the file loads.
_PARSE_VALUES = {
    "window": "1m",
    "window_wide": "1m",
    "namespace": "ns",
    "offered_rate": "1",
    "pod": "p",
    "container": "c",
}


def from_marker(args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Check]:
    """SLOs from one ``hft_slo`` marker.

    ``hft_slo("p99_latency", max_ms=20)`` takes a built-in with parameters;
    ``hft_slo(name=..., expr=..., comparator=..., threshold=...)`` defines one;
    ``hft_slo(slo_a, check_b)`` passes :class:`Slo` objects (any :class:`Check`) through.
    """
    if args and all(isinstance(a, Check) for a in args):
        if kwargs:
            raise ConfigError(
                f"hft_slo: pass Slo objects or keyword arguments, not both (got {sorted(kwargs)})"
            )
        return list(args)
    if len(args) == 1 and isinstance(args[0], str) and "expr" not in kwargs:
        if args[0] not in BUILTINS:
            raise ConfigError(
                f"hft_slo({args[0]!r}): not a built-in SLO (expected one of {', '.join(sorted(BUILTINS))}); "
                "to define your own pass name=, expr=, comparator= and threshold="
            )
        return [builtin(args[0], **kwargs)]
    if args:
        raise ConfigError(
            f"hft_slo: expected a built-in name, Slo objects or keyword arguments; got args {args!r}"
        )
    missing = [k for k in ("name", "expr", "comparator", "threshold") if k not in kwargs]
    if missing:
        raise ConfigError(f"hft_slo(...): missing {', '.join(missing)}; got {sorted(kwargs)}")
    return [_slo_from_mapping(kwargs, where="hft_slo marker")]


def load_file(path: pathlib.Path) -> list[Slo | Alert]:
    """SLOs from a YAML alert profile; raises ``ConfigError`` saying which entry is wrong."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"SLO file {path}: cannot read it ({e}); check --hft-slo-file") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"SLO file {path}: not valid YAML: {e}") from e
    return parse_profile(data, where=str(path))


def parse_profile(data: Any, *, where: str = "SLO profile") -> list[Slo | Alert]:
    entries: Any = data.get("slos", data.get("alerts")) if isinstance(data, Mapping) else data
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f"{where}: expected a non-empty YAML list of alerts (expr, description, severity), "
            f"or a mapping with 'slos:'; got {type(data).__name__}"
        )
    slos = [_slo_from_mapping(e, where=f"{where} entry {i + 1}", index=i) for i, e in enumerate(entries)]
    _no_duplicates(slos, where=where)
    return slos


def _slo_from_mapping(entry: Any, *, where: str, index: int = 0) -> Slo | Alert:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping with expr/description/severity, got {entry!r}")
    unknown = set(entry) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    expr = entry.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"{where}: 'expr' must be a non-empty PromQL string, got {expr!r}")
    try:
        required(render(expr, _PARSE_VALUES))
    except ValueError as e:
        raise ConfigError(f"{where}: expr {expr.strip()!r}: {e}") from e
    description = str(entry.get("description", ""))
    name = str(entry.get("name") or _slug(description) or f"alert{index + 1}")
    comparator, threshold = entry.get("comparator"), entry.get("threshold")
    severity = str(entry.get("severity", "error"))
    try:
        if comparator is None and threshold is None:
            return Alert(
                name=name, expr=expr.strip(), description=description, severity=severity,
                step=float(entry.get("step", 1.0)),
            )  # fmt: skip
        if comparator is None or threshold is None:
            raise ConfigError(f"give both 'comparator' and 'threshold' (or neither), got {dict(entry)!r}")
        return Slo(
            name=name,
            expr=expr,
            comparator=str(comparator),
            threshold=threshold,
            description=description,
            severity=severity,
            unit=str(entry.get("unit", "")),
        )
    except (ConfigError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:48]


def _no_duplicates(slos: Iterable[Slo | Alert], *, where: str) -> None:
    seen: set[str] = set()
    for slo in slos:
        if slo.name in seen:
            raise ConfigError(
                f"{where}: SLO name {slo.name!r} appears twice; give each entry a unique 'name'"
            )
        seen.add(slo.name)
