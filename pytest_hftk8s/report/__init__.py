"""The session report: ``summary.json``, a self-contained ``index.html`` and failure bundles.

It reads plain result structures (dicts and the cluster contract's dataclasses), never pytest
objects, and never queries Prometheus itself: SLO results arrive already evaluated.
"""
