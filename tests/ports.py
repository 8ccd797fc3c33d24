"""Loopback ports for the servers the tests start."""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _ports_outside_the_ephemeral_range() -> range:
    """The larger run of unprivileged ports below or above the range the kernel hands the
    client side of a connection (and a bind to port 0) from."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return max(range(10_000, low), range(high + 1, 65_536), key=len)


def _ports_of_this_worker() -> Iterator[int]:
    """The ports outside the ephemeral range that this pytest-xdist worker alone hands
    out, from a random place in its share, round and round."""
    outside = _ports_outside_the_ephemeral_range()
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    share = len(outside) // workers
    start = outside.start + share * worker
    offset = random.randrange(share)
    return (start + (offset + step) % share for step in itertools.count())


_ports = _ports_of_this_worker()


def free_port() -> int:
    """A loopback port nothing listens on, for a server a test starts.

    Not one from the kernel's ephemeral range, as a bind to port 0 gives: every connection
    the suite opens takes its client side from that range, and a server told to listen
    on a port such a connection holds cannot bind it ("Address already in use": a serve
    that exits at start, now and then, under a flood from a test beside it). Each worker
    of a parallel run has a share of its own, so two never hand out the same port."""
    return next(port for port in _ports if _nothing_on(port))


def _nothing_on(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


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
