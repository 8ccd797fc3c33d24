"""Shared test helpers (ports.py, mta.py, postgres.py, ...) are imported from this folder;
the fixtures every part's tests use are here."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from postgres import PostgresServer, postgres_binary  # noqa: E402


@pytest.fixture
def postgres():
    """A real PostgreSQL server of the test's own, started and removed by the test."""
    if postgres_binary("postgres") is None:
        pytest.skip("make test installs postgresql")
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()
