"""Fixtures shared by every tier live in tests/fixtures.py and are loaded, with the
eventlet monkey-patch, by the repository's root conftest.py, so that tests under
services/*/tests/ get them too. Nothing to add here."""
