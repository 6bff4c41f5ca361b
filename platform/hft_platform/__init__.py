"""The reference trading platform: FastAPI backend, engine service, PostgreSQL and Redis access.

Lives under ``platform/`` but is named ``hft_platform`` so the stdlib ``platform`` module is never
shadowed. Nothing here imports the pytest plugin.
"""
