"""pytest-hftk8s: resilience and performance testing of a trading platform on Kubernetes.

The package is a pytest plugin (entry point ``pytest_hftk8s.plugin``). Importing it must stay cheap
and side-effect free: no deploy, no cluster connection, no subprocess until a test asks for a fixture.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
