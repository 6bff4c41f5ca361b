"""Load generation: a raw HTTP/1.1 keep-alive engine (``engine``), one run as a context manager
(``run``) and the object the ``hft_load`` fixture hands out (``driver``).

It drives HTTP only; it never talks to Prometheus, the cluster API or pytest.
"""
