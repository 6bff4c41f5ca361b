"""Failures the backend's services report; the routes map each to one HTTP status.

Types only: no HTTP imports here, so services stay independent of the web framework.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every failure a service reports on purpose."""


class InvalidRequest(ServiceError):
    """The request is well-formed JSON but breaks a rule (unknown symbol, bad tick, ...)."""


class Unauthenticated(ServiceError):
    """Missing or unknown API key."""


class RateLimited(ServiceError):
    """The key exceeded its orders-per-second budget."""


class NotFound(ServiceError):
    """No such order (or not the caller's), or no such symbol."""


class Conflict(ServiceError):
    """The order exists but is not in a state that allows the operation."""


class Unavailable(ServiceError):
    """A dependency (engine shard, Redis, PostgreSQL) cannot serve the request now; retry."""
