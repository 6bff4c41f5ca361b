"""Registers the platform tests' fixtures; they and the helpers live in platform_support.py
(a unique module name, so test modules can import the helpers whatever else is collected)."""

from platform_support import api, auth, stack  # noqa: F401
