"""A loopback stack of real servers for tests and benchmarks: PostgreSQL, Redis, engine, backend, nginx.

Development tooling only: production runs the same processes from the Kubernetes manifests.
Everything binds 127.0.0.1 on free ports under one temporary directory, every wait is bounded, and
``stop()`` removes every process and file it created (also after a failed start).
"""
