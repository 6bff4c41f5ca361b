"""Resilience testing on top of chaos, load and SLOs: the ``hft_chaos`` fixture's logic, the session
baseline and the measurements a resilience suite reports (recovery time, acknowledged vs stored
orders, the OOMKilled -> CrashLoopBackOff sequence). The plugin wires it; nothing here is imported
at plugin import time."""
