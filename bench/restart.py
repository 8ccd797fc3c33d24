"""What a restart costs Postfix: policy requests that got no answer, so that Postfix applied
its ``default_action`` (fail-open: a typo through unchecked; fail-closed: a 4xx to the
client), while ``typogate policy`` was restarted under a steady flow of requests; and how
long each request waited while typogate could not start at all. Side by side in one run:
typogate binding its address itself, and a socket unit holding it (systemd's ``.socket``,
played by tests/socket_unit.py) across the restarts.

    .venv/bin/python bench/restart.py [--restarts 5] [--clients 4] [--json]

Each client is one of Postfix's smtpd processes, as Postfix's policy client behaves by
default: one connection kept open, ``smtpd_policy_service_timeout`` 100 s for an answer,
and on a failure a new connection after ``smtpd_policy_service_retry_delay`` (1 s), at most
``smtpd_policy_service_try_limit`` (2) tries; then the request counts as given up. A restart
is what systemd does on ``systemctl restart``: SIGTERM, wait for the exit, start again.
"Cannot start" is a configuration typogate refuses, started again every 2 s for
``--broken-seconds`` (``Restart=on-failure``, ``RestartSec=2s``), then a good one.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from mta import read_policy_answer  # noqa: E402
from ports import free_port  # noqa: E402
from socket_unit import SocketUnit  # noqa: E402

TYPOGATE = str(Path(sys.executable).with_name("typogate"))
REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
    b"sender=alice@example.org\nrecipient=john@army.ml\n\n"
)
TIMEOUT, RETRY_DELAY, TRIES = 100.0, 1.0, 2  # Postfix's defaults
RESTART_SECONDS = 2.0  # RestartSec= of the packaged units
VARIANTS = ("typogate's", "systemd's")  # whose listening socket it is


@dataclass
class Flow:
    """What the clients saw: requests asked, given up on, and the seconds each took."""

    asked: int = 0
    given_up: int = 0
    waits: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(port: int, flow: Flow, running: threading.Event, pause: float) -> None:
    connection: socket.socket | None = None
    while running.is_set():
        started = time.monotonic()
        for attempt in range(TRIES):
            try:
                if connection is None:
                    connection = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                connection.sendall(REQUEST)
                read_policy_answer(connection)
                answered = True
                break
            except OSError:
                if connection is not None:
                    connection.close()
                connection = None
                answered = False
                if attempt + 1 < TRIES:
                    time.sleep(RETRY_DELAY)
        with flow.lock:
            flow.asked += 1
            flow.given_up += not answered
            flow.waits.append(time.monotonic() - started)
        time.sleep(pause)
    if connection is not None:
        connection.close()


def _answers(port: int, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=within) as probe:
                probe.sendall(REQUEST)
                if probe.recv(4096).startswith(b"action="):
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"typogate does not answer on {port}")


def run(
    variant: str, restarts: int, broken: float, clients: int, pause: float, folder: Path
) -> dict:
    """Restart ``typogate policy`` ``restarts`` times under ``clients`` clients, or (with
    ``broken`` seconds) stop it and start it with a configuration it refuses meanwhile."""
    port = free_port()
    command = [TYPOGATE, "policy", "--listen", f"127.0.0.1:{port}"]
    log = folder / f"{variant[:-2]}.log"  # typogate.log, systemd.log
    (folder / "broken.toml").write_text("[gateway\n")
    unit = SocketUnit([port]) if variant == VARIANTS[1] else None

    def start(*more: str) -> subprocess.Popen[bytes]:
        if unit is not None:
            return unit.start([*command, *more], log)
        with open(log, "ab") as out:
            return subprocess.Popen([*command, *more], stdout=out, stderr=out, cwd=folder)

    process = start()
    flow, running = Flow(), threading.Event()
    threads = [
        threading.Thread(target=_client, args=(port, flow, running, pause)) for _ in range(clients)
    ]
    try:
        _answers(port)
        running.set()
        for thread in threads:
            thread.start()
        for _ in range(restarts):
            time.sleep(2.0)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            process = start()
        if broken:
            time.sleep(2.0)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            until = time.monotonic() + broken
            while time.monotonic() < until:
                start("--config", str(folder / "broken.toml")).wait(timeout=60)
                time.sleep(RESTART_SECONDS)
            process = start()
        _answers(port)
        time.sleep(2.0)
    finally:
        running.clear()
        for thread in threads:
            thread.join(timeout=2 * TIMEOUT)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        if unit is not None:
            unit.close()
    waits = sorted(flow.waits)
    return {
        "variant": variant,
        "case": f"cannot start, {broken:g} s" if broken else f"{restarts} restarts",
        "requests": flow.asked,
        "given_up": flow.given_up,
        "slower_than_1s": sum(wait > 1.0 for wait in waits),
        "longest_wait_s": round(waits[-1], 2) if waits else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--broken-seconds", type=float, default=12.0)
    parser.add_argument("--clients", type=int, default=4, help="Postfix smtpd processes")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between requests")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="typogate-restart-") as scratch:
        rows = [
            run(variant, restarts, broken, args.clients, args.pause, Path(scratch))
            for restarts, broken in ((args.restarts, 0.0), (0, args.broken_seconds))
            for variant in VARIANTS
        ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(
        title=f"typogate policy under {args.clients} Postfix clients",
        caption="given up: both of Postfix's tries failed, so its default_action applied",
    )
    for column in ("", "socket", "requests", "given up", "over 1 s", "longest s"):
        table.add_column(column, justify="right" if column not in ("", "socket") else "left")
    for row in rows:
        table.add_row(
            row["case"],
            row["variant"],
            str(row["requests"]),
            str(row["given_up"]),
            str(row["slower_than_1s"]),
            str(row["longest_wait_s"]),
        )
    Console().print(table)


if __name__ == "__main__":
    main()
