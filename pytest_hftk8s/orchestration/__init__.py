"""Orchestration: what happens around a test, between the plugin's wiring and the parts that do the work.

``lease`` (deploy once, gate, share across xdist workers, tear down; the measurement lock),
``runtime`` (the stateful pytest plugin object), ``recorder`` (a test's state -> its typed record),
``load``, ``chaos`` and ``slos`` (the fixtures' logic), ``bundle`` (failure bundles), ``scale``
(another replica profile beside the platform). It may use every part below it - gate, load, slo,
chaos, report, the cluster contract and selector - but nothing below imports it, and it never names
a cluster backend class.
"""
