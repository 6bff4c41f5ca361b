"""Regenerate the dashboard JSON files from the grafanalib sources beside this file.

``python dashboards/generate.py`` writes ``<name>.json`` next to each ``<name>.dashboard.py`` and a
copy into ``manifests/components/grafana/dashboards/`` (the Grafana component's ConfigMap is generated
from there: kustomize reads no file outside a component's directory). ``--check`` exits 1 when a
committed JSON file is stale in either place.

It uses grafanalib's public API only: each source is imported with :mod:`importlib` and must define
``dashboard`` (a ``grafanalib.core.Dashboard``); the JSON is that object's ``to_json_data()``, encoded
by :class:`DashboardJSONEncoder`, which asks each nested grafanalib object for its ``to_json_data()``
(grafanalib keeps its own encoder in the private ``grafanalib._gen``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import sys
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
COMPONENT = HERE.parent / "manifests" / "components" / "grafana" / "dashboards"
SUFFIX = ".dashboard.py"


class DashboardJSONEncoder(json.JSONEncoder):
    """Encodes grafanalib objects (anything with ``to_json_data()``) as the JSON Grafana reads."""

    def default(self, o: Any) -> Any:
        to_json_data = getattr(o, "to_json_data", None)
        if callable(to_json_data):
            return to_json_data()
        return super().default(o)


def load(source: pathlib.Path) -> Any:
    """The ``dashboard`` object a ``*.dashboard.py`` source defines."""
    name = "hftk8s_dashboard_" + source.name.removesuffix(SUFFIX).replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {source}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dashboard = getattr(module, "dashboard", None)
    if dashboard is None or not callable(getattr(dashboard, "to_json_data", None)):
        raise SystemExit(f"{source}: expected a module-level `dashboard` (grafanalib.core.Dashboard)")
    return dashboard


def render(source: pathlib.Path) -> str:
    """The JSON text of one ``*.dashboard.py`` source."""
    return json.dumps(load(source).to_json_data(), sort_keys=True, indent=2, cls=DashboardJSONEncoder) + "\n"


def outputs() -> dict[str, str]:
    """``<name>.json`` -> its text, for every source beside this file."""
    return {
        source.name.removesuffix(SUFFIX) + ".json": render(source)
        for source in sorted(HERE.glob("*" + SUFFIX))
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if a committed JSON file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in outputs().items():
        for target in (HERE / name, COMPONENT / name):
            if args.check:
                if not target.exists() or target.read_text() != text:
                    stale.append(str(target.relative_to(HERE.parent)))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                print(f"wrote {target.relative_to(HERE.parent)}")
    if stale:
        print(f"stale dashboard JSON: {', '.join(stale)}; run python dashboards/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
