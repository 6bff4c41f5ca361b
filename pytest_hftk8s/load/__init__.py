"""Load generation only: a raw HTTP/1.1 keep-alive engine (``engine``), the platform's request
shapes (``api``), an order flow that trades (``flow``), one run as a context manager (``run``) and
the object the ``hft_load`` fixture hands out (``driver``).

It drives HTTP only; it never talks to Prometheus, the cluster API, chaos or pytest, and it judges
nothing but the validity of its own measurement.
"""
