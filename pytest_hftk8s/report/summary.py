"""Build the session's :class:`~pytest_hftk8s.results.SessionReport` from typed test records, write
it as ``summary.json`` (atomically: temp file + rename; non-finite numbers as ``null``), and read a
previous one back (a comparison's baseline).

Reads :mod:`pytest_hftk8s.results` only: no pytest objects, no network.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Sequence

from pytest_hftk8s.errors import ConfigError
from pytest_hftk8s.report.digest import digest
from pytest_hftk8s.results import (
    Baseline,
    Capacity,
    PlatformInfo,
    ResilienceScore,
    RunIdentity,
    SessionReport,
    TestRecord,
    Totals,
    from_dict,
    to_dict,
)

SCHEMA_VERSION = 3  # 3: identity, repeat, comparison; TestRecord.repeat and case


def build(
    records: Sequence[TestRecord],
    *,
    platform: PlatformInfo | None,
    cluster: str | None,
    profile: str,
    started: float,
    baseline: Baseline | None = None,
    capacity: Capacity | None = None,
    score: ResilienceScore | None = None,
    identity: RunIdentity | None = None,
    repeat: int = 1,
) -> SessionReport:
    counts: dict[str, int] = {}
    for t in records:
        counts[t.outcome] = counts.get(t.outcome, 0) + 1
    slos = [s for t in records for s in t.slos]
    return SessionReport(
        schema=SCHEMA_VERSION,
        cluster=cluster,
        profile=profile,
        started=started,
        finished=time.time(),
        platform=platform,
        capacity=capacity,
        baseline=baseline,
        totals=Totals(
            tests=len(records),
            outcomes=counts,
            slos=len(slos),
            slos_failed=sum(1 for s in slos if not s.passed),
        ),
        tests=list(records),
        resilience=digest(records),
        score=score,
        identity=identity,
        repeat=repeat,
    )


def write(report: SessionReport, directory: pathlib.Path) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(to_dict(report), indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def read(path: pathlib.Path) -> SessionReport:
    """A previous run's report: its ``hft-report/`` directory (or a CI artifact unpacked around one),
    or its ``summary.json``. Raises :class:`~pytest_hftk8s.errors.ConfigError` saying what was found."""
    candidates = [path] if path.is_file() else [path / "summary.json", path / "hft-report" / "summary.json"]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise ConfigError(
            f"--hft-compare: expected a previous hft-report/ directory or its summary.json; "
            f"{'nothing is' if not path.exists() else 'no summary.json is'} at {path}"
        )
    try:
        data = json.loads(found.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"--hft-compare: {found} is not a readable summary.json ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list) or "schema" not in data:
        raise ConfigError(f"--hft-compare: {found} is not an hftk8s summary.json (no schema or tests)")
    if int(data["schema"]) > SCHEMA_VERSION:
        raise ConfigError(
            f"--hft-compare: {found} has schema {data['schema']}, newer than this plugin's "
            f"{SCHEMA_VERSION}; upgrade pytest-hftk8s to compare with it"
        )
    try:
        return from_dict(SessionReport, data)
    except Exception as e:  # dacite's errors name the field that did not fit
        raise ConfigError(f"--hft-compare: {found} could not be read as a session report: {e}") from e
