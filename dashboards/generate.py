"""Regenerate the dashboard JSON files from the grafanalib sources beside this file.

``python dashboards/generate.py`` writes ``<name>.json`` next to each ``<name>.dashboard.py``;
``--check`` exits 1 when a committed JSON file is stale. Uses grafanalib's own loader and encoder.
"""

from __future__ import annotations

import argparse
import io
import json
import pathlib
import sys

from grafanalib._gen import DashboardEncoder, loader

HERE = pathlib.Path(__file__).resolve().parent


def render(source: pathlib.Path) -> str:
    """The JSON text grafanalib produces for one ``*.dashboard.py`` source."""
    dashboard = loader(str(source))
    out = io.StringIO()
    json.dump(dashboard.to_json_data(), out, sort_keys=True, indent=2, cls=DashboardEncoder)
    return out.getvalue() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed JSON file is stale")
    args = parser.parse_args(argv)
    stale = []
    for source in sorted(HERE.glob("*.dashboard.py")):
        target = source.with_name(source.name.removesuffix(".dashboard.py") + ".json")
        text = render(source)
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.name)
        else:
            target.write_text(text)
            print(f"wrote {target}")
    if stale:
        print(f"stale dashboard JSON: {', '.join(stale)}; run python dashboards/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
