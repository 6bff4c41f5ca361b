"""The FastAPI backend: HTTP edge of the platform (registration, orders, book, probes, metrics).

Layering as in full-stack-fastapi-template: ``app`` -> ``api.routes`` -> ``deps`` -> ``services``
-> ``models`` / ``domain`` / ``wire``. Only routes and deps know HTTP (and raise HTTPException);
services are keyword-only and raise :mod:`hft_platform.backend.services.errors`.
"""
