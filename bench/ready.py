"""How long a start keeps Postfix waiting: seconds from starting ``typogate policy`` on a
store of learned relationships to its first answer, for stores of ``--senders`` senders
with ``--per-sender`` correspondents each (learned from deliveries alone, at the three
levels a store keeps: the organisation, the sender's domain and the sender's address), and
with ``--against REV`` the same for another revision's ``src`` beside, in one run.

    .venv/bin/python bench/ready.py [--senders 100,300] [--rounds 3] [--against 9ebe2ea] [--json]

This is what ``typogate doctor`` weighs against Postfix's wait (its ``restart`` check):
reading the store, building the index, learning every relationship, then listening. Each
size's SQLite store is made once and read by every tree (the schema is the same); the
trees take turns for ``--rounds`` rounds and each reports its median. The names are
``bench/learning.py``'s (``correspondents``).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from learning import correspondents
from trees import print_medians, source_trees, tree_arguments, typogate_code

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from ports import free_port  # noqa: E402

REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
    b"sender=user0@example.org\nrecipient=john@army.ml\n\n"
)
_GIVE_UP = 600.0


def _fill(url: str, senders: int, per_sender: int) -> int:
    """Learn ``senders`` x ``per_sender`` deliveries into the store at ``url``; returns the
    relationships stored (three per sender and domain)."""
    from typogate.store import Store

    counts = {
        (party, domain): 3
        for sender, domain in correspondents(senders, per_sender)
        for party in ("*", "example.org", sender)
    }
    store = Store(url, create=True, writer=False)
    try:
        store.history.learn(counts)
    finally:
        store.close()
    return len(counts)


def _ready_seconds(src: Path, url: str, folder: Path) -> float:
    """Start ``typogate policy`` on the store at ``url``: seconds until it answers."""
    port = free_port()
    argv = ["policy", "--listen", f"127.0.0.1:{port}", "--db", url]
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", typogate_code(argv)],
        env={**os.environ, "PYTHONPATH": str(src)},
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < _GIVE_UP:
            if process.poll() is not None:
                raise RuntimeError(f"typogate policy exited with status {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=_GIVE_UP) as client:
                    client.sendall(REQUEST)
                    if client.recv(4096).startswith(b"action="):
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"typogate policy did not answer within {_GIVE_UP:g} s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", default="100,300", help="sender counts, comma-separated")
    parser.add_argument("--per-sender", type=int, default=300, help="correspondents per sender")
    tree_arguments(parser, rounds=3)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as scratch,
        source_trees(Path(scratch), args.against) as trees,
    ):
        folder = Path(scratch)
        stores = {}
        for senders in (int(n) for n in args.senders.split(",")):
            url = f"sqlite:///{folder / f'learned-{senders}.db'}"
            stored = _fill(url, senders, args.per_sender)
            stores[f"{senders} senders, {stored:,} relationships"] = url
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for size, url in stores.items():
                for tree, src in trees.items():
                    times.setdefault((size, tree), []).append(_ready_seconds(src, url, folder))
    title = f"typogate policy: seconds from start to first answer, median of {args.rounds}"
    print_medians(title, "store", stores, trees, times, as_json=args.json)


if __name__ == "__main__":
    main()
