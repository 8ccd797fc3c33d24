"""The store tests' PostgreSQL: a real server per test (tests/postgres.py)."""

from __future__ import annotations

import pytest
from postgres import PostgresServer, postgres_binary


@pytest.fixture
def postgres():
    if postgres_binary("postgres") is None:
        pytest.skip("make test installs postgresql")
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()
