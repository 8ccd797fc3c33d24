"""Loopback ports for the servers the tests start."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def stop_servers_on_sigterm() -> None:
    """Let SIGTERM (``timeout``, ``kill``) end this process as Ctrl-C does, through its
    ``finally`` blocks, so that the servers it started are stopped by their pids and not
    left listening."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@contextmanager
def port_in_use() -> Iterator[int]:
    """A loopback port that another program listens on while the block runs."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield squatter.getsockname()[1]


def sessions_at(port: int) -> int:
    """TCP sessions to the server on 127.0.0.1:``port`` (its side of them, in any state
    but closed)."""
    listed = subprocess.run(
        ["ss", "-Htn", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(listed.splitlines())


def wait_until(predicate, within: float) -> bool:
    """Whether ``predicate()`` comes true within ``within`` seconds (asked every 0.2 s)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()
