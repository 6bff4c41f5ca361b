"""The session report: ``summary.json`` (``summary``), the resilience digest (``digest``) and a
self-contained ``index.html`` (``html``).

It reads :mod:`pytest_hftk8s.results` only - never pytest objects, the cluster, Prometheus or the
load generator: every figure arrives already measured and judged.
"""
