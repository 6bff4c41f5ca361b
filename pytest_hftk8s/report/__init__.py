"""The session report, from typed results to files:

- ``summary``: ``summary.json`` (and reading a previous one back, a comparison's baseline);
- ``digest``: the resilience digest, one row per experiment;
- ``junit``: ``junit.xml``, a case per SLO and per compared measure (also appended to
  ``--junitxml``);
- ``preflight``: the preflight table (at a session's start, by ``--hft-preflight``, and when a
  prerequisite is missing);
- ``html``: the self-contained ``index.html``, laid out from ``markup`` (escaping, numbers, anchors,
  embedded figures) and ``compared`` (the Compared-with section, the repeats table and the overlay
  figures);
- the figures, drawn with matplotlib into SVG: ``plots`` (the per-test figures, on the time axis of
  ``timeaxis``), ``scaling`` (the USL figure of a scaling sweep), all on ``canvas`` (the ``Plot``
  record, fixed-margin figures, SVG text).

It reads :mod:`pytest_hftk8s.results` only - never pytest objects, the cluster, Prometheus or the
load generator: every figure arrives already measured and judged.
"""
