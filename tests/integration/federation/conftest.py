"""The registry's tests run once on SQLite and once on a fresh PostgreSQL database
(``db_url``, tests/fixtures.py)."""
import pytest


@pytest.fixture
def engine(db_url, engine_for):
    return engine_for(db_url)
