"""SLOs and every other judgement of the plugin, computed once from Prometheus and typed results.

``queries`` (the one PromQL catalogue), ``prom`` (the one Prometheus client), ``model`` (SLOs,
alerts, comparators), ``builtin``, ``profile`` (marker kwargs and kube-burner alert profiles),
``evaluate``, ``relative`` (the session baseline), ``probes``, ``intensity`` (did a stress reach its
intensity), ``recovery``, ``latency`` (client side), ``database`` (acknowledged orders, fills, book),
``oom`` and ``diagnostics``. This package is the only place that talks to Prometheus or writes
PromQL; it never touches the cluster, chaos, the load generator or pytest.
"""
