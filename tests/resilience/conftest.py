"""Registers the resilience tests' hooks and fixtures from resilience_support.py (a unique module
name, so test modules can import its helpers whatever else is collected)."""

from resilience_support import pytest_configure  # noqa: F401
