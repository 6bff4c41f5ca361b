"""The session's resilience score, in the style of Litmus and krkn: a weighted share of what held.

Litmus scores an experiment by the weighted share of its probes that passed; krkn weights each SLO by
its severity. Here every SLO evaluated in a resilience test (a test that injected chaos or ran another
replica profile) is one term, weighted by its severity (:data:`WEIGHTS`); each such test adds one more
term, "assertions", for what it asserted outside SLOs (intensity reached, valid measurement, no engine
restart), at the weight of an ``error``. Its value is 1 when the test passed, or when it failed only
through one of its blocking SLOs (already a term: not counted twice), else 0.

    score = 100 x sum(weight x held) / sum(weight)

Pure: typed records in, a typed :class:`~pytest_hftk8s.results.ResilienceScore` out.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_hftk8s.results import ResilienceScore, ScoreItem, TestRecord

#: A critical SLO counts four times a warning; ``info`` is shown but does not count.
WEIGHTS = {"critical": 4.0, "error": 2.0, "warning": 1.0, "info": 0.0}
ASSERTIONS = "assertions"


def _is_resilience(record: TestRecord) -> bool:
    return bool(record.chaos or record.scale)


def resilience_score(
    records: Sequence[TestRecord], *, weights: dict[str, float] | None = None
) -> ResilienceScore:
    weights = dict(WEIGHTS if weights is None else weights)
    items: list[ScoreItem] = []
    for rec in records:
        if not _is_resilience(rec) or rec.outcome == "skipped":
            continue
        experiment = ", ".join(c.experiment for c in rec.chaos) or ", ".join(s.profile for s in rec.scale)
        for slo in rec.slos:
            items.append(
                ScoreItem(
                    test=rec.nodeid,
                    experiment=experiment,
                    slo=slo.name,
                    severity=slo.severity,
                    weight=weights.get(slo.severity, 0.0),
                    passed=slo.passed,
                )
            )
        slo_failed = any(s.blocking and not s.passed for s in rec.slos)
        items.append(
            ScoreItem(
                test=rec.nodeid,
                experiment=experiment,
                slo=ASSERTIONS,
                severity="error",
                weight=weights.get("error", 0.0),
                passed=rec.outcome == "passed" or slo_failed,
            )
        )
    total = sum(i.weight for i in items)
    held = sum(i.weight for i in items if i.passed)
    return ResilienceScore(
        score=round(100.0 * held / total, 1) if total > 0 else None,
        weights=weights,
        items=items,
        method=(
            "100 x sum(weight x held) / sum(weight) over every SLO of the resilience tests (weight by "
            "severity: " + ", ".join(f"{k} {v:g}" for k, v in weights.items()) + ") and one 'assertions' "
            f"term per test (weight of error); here {held:g} of {total:g}"
        ),
    )
