"""Fixtures and helpers shared by the tests (loaded as plugins from tests/conftest.py)."""
