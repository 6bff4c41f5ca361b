"""SLOs: definitions (``model``, ``builtin``), sources (``profile``: marker kwargs and YAML alert
profiles), the one Prometheus client (``prom``) and evaluation over a test's window (``evaluate``).

This package is the only place that talks to Prometheus; it never touches the cluster or pytest.
"""
