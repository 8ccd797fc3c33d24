"""Hostile clients against a real `typogate policy`: what they cost it, and what a real
request meets meanwhile.

1. Idle flood: N idle connections opened first (more than the table holds), then one real
   request on a connection of its own, as Postfix would open it: its answer and latency.
2. Padded flood: N requests whose recipient domain carries random blank padding (each a new
   spelling of one domain), one in seven with the padding in the local part (unreadable):
   the process's memory before and after, requests/s, the journal's and the log's size.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from memory import memory_mib  # noqa: E402
from mta import read_policy_answer  # noqa: E402
from ports import free_port, stop_servers_on_sigterm, wait_for_port  # noqa: E402

TYPOGATE = str(Path(sys.executable).with_name("typogate"))
CONFIG = """
[domains]
protected = ["army.mil", "gmail.com"]
[gateway]
journal = "journal.jsonl"
"""


def _request(recipient: bytes) -> bytes:
    return (
        b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
        b"sender=alice@example.org\nrecipient=" + recipient + b"\n\n"
    )


def _answer(client: socket.socket, recipient: bytes) -> bytes:
    client.sendall(_request(recipient))
    return read_policy_answer(client)


def idle_flood(port: int, idle: int) -> dict:
    """Open ``idle`` silent connections, then ask once on a new one."""
    held = [socket.create_connection(("127.0.0.1", port), timeout=120) for _ in range(idle)]
    try:
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=120) as client:
                answer = _answer(client, b"john@army.ml").decode().strip()
        except (ConnectionError, TimeoutError) as error:  # Postfix: its default_action
            answer = f"no answer ({type(error).__name__})"
        seconds = time.perf_counter() - started
    finally:
        for client in held:
            client.close()
    return {"idle connections": idle, "answer": answer[:40], "answered in ms": 1000 * seconds}


def padded_flood(port: int, pid: int, requests: int, work: Path) -> dict:
    rng = random.Random(15)
    blanks = bytes.maketrans(bytes(range(256)), b" \t" * 128)
    with socket.create_connection(("127.0.0.1", port), timeout=120) as client:
        _answer(client, b"x@army.ml")
        before = memory_mib(pid)
        started = time.perf_counter()
        for n in range(requests):
            padding = rng.randbytes(rng.randint(2000, 4000)).translate(blanks)
            recipient = b"x" + padding + b"@army.ml" if n % 7 == 0 else b"x@army.ml" + padding
            _answer(client, recipient)
        seconds = time.perf_counter() - started
        after = memory_mib(pid)
    time.sleep(1.5)  # the journal's writer flushes twice a second
    journal = sum(f.stat().st_size for f in work.glob("journal.jsonl*"))
    return {
        "requests": requests,
        "requests/s": requests / seconds,
        "RSS before MB": before,
        "RSS after MB": after,
        "journal MB": journal / 2**20,
        "log KB": (work / "policy.log").stat().st_size / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=int, default=600, help="idle connections")
    parser.add_argument("--requests", type=int, default=20_000, help="padded requests")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="typogate-flood-") as folder:
        work = Path(folder)
        (work / "typogate.toml").write_text(CONFIG)
        port = free_port()
        with (work / "policy.log").open("ab") as log:
            policy = subprocess.Popen(
                [TYPOGATE, "policy", "--listen", f"127.0.0.1:{port}", "--config", "typogate.toml"],
                cwd=work,
                stdout=log,
                stderr=log,
            )
            try:
                wait_for_port(port, timeout=60)
                results = {
                    "idle flood": idle_flood(port, args.idle),
                    "padded flood": padded_flood(port, policy.pid, args.requests, work),
                }
            finally:
                policy.terminate()
                policy.wait(timeout=30)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    table = Table(title="typogate policy under hostile clients")
    for column in ("scenario", "measure", "value"):
        table.add_column(column)
    for scenario, measures in results.items():
        for name, value in measures.items():
            shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
            table.add_row(scenario, name, shown)
    Console().print(table)


if __name__ == "__main__":
    stop_servers_on_sigterm()
    main()
