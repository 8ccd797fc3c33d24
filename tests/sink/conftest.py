"""The sink tests' fixtures; their helpers (sink_process.py, zone_server.py) sit beside."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sink_process import RunningSink, start_sink  # noqa: E402


@pytest.fixture
def sink_in(tmp_path):
    """Start sinks in the test's folder; each is stopped at the end."""
    started: list[RunningSink] = []

    def start(name: str = "sink", **options: Any) -> RunningSink:
        running = start_sink(tmp_path / name, **options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
