"""The project's one error hierarchy.

Every error raised by the plugin derives from :class:`HftError`; library exceptions are always
chained (``raise ClusterError(...) from e``). An SLO miss is an ``AssertionError`` so pytest shows it
as a test failure rather than an error. Messages say what was expected, what was seen, and what to do.

This module holds types only: no I/O, no imports from the rest of the package.
"""

from __future__ import annotations


class HftError(Exception):
    """Base class of every error the plugin raises on purpose."""


class ConfigError(HftError):
    """Bad options, ini values, manifests or SLO files."""


class ClusterError(HftError):
    """A cluster backend could not do what was asked (deploy, read status, tear down)."""


class ClusterUnavailable(ClusterError):
    """The selected cluster cannot be reached or started on this machine."""


class PreflightFailed(ClusterUnavailable):
    """A prerequisite of the cluster is missing; the message is the preflight table, with what to do."""


class GateTimeout(HftError):
    """A readiness gate did not pass within its bound; the message names the unmet gate and why."""


class ChaosError(HftError):
    """Chaos could not be injected, verified or removed."""


class ChaosRefused(ChaosError):
    """Destructive chaos was refused, e.g. against a kube context that is not explicitly allowed."""


class LoadError(HftError):
    """The load generator could not run (bad parameters, target unreachable)."""


class SloViolation(AssertionError):
    """An SLO did not hold over the test's window (or had no data, which counts as a miss)."""
