"""How long a start keeps Postfix waiting: seconds from starting ``typogate policy`` on a
store of learned relationships to its first answer, for stores of ``--senders`` senders
with ``--per-sender`` correspondents each (learned from deliveries alone, at the three
levels a store keeps: the organisation, the sender's domain and the sender's address), and
with ``--against REV`` the same for another revision's ``src`` beside, in one run.

    .venv/bin/python bench/ready.py [--senders 100,300] [--rounds 3] [--against 9ebe2ea] [--json]

Two starts per store: the first, which learns from every relationship (as after an
upgrade, or a new configuration: what ``typogate doctor`` weighs against Postfix's wait),
and a restart on the same store, which may take what the first kept (policy/kept.py).
Below each, the parts of the start as its own log line gives them (a revision from before
that line shows "—"). Each tree's stores are made by its own code (the schemas of two
revisions may differ) and copied afresh for each round; the trees take turns for
``--rounds`` rounds and each reports its median. The names are ``bench/learning.py``'s
(``correspondents``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from learning import correspondents
from trees import (
    HERE,
    print_medians,
    source_trees,
    tree_arguments,
    tree_output,
    typogate_code,
)

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from ports import free_port  # noqa: E402

REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
    b"sender=user0@example.org\nrecipient=john@army.ml\n\n"
)
_GIVE_UP = 600.0
# The start's log line: "ready in 24.7 s: the lists and index 0.7 s, reading the store
# 2.1 s, learning 21.8 s".
_PARTS = re.compile(r"(the lists and index|reading the store|learning) ([\d.]+) s")


def _fill(url: str, senders: int, per_sender: int) -> int:
    """Learn ``senders`` x ``per_sender`` deliveries into the store at ``url`` (with the
    ``typogate`` on the path); returns the relationships stored (three per sender and
    domain)."""
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


def _fill_with(src: Path, url: str, senders: int, per_sender: int) -> int:
    """:func:`_fill` with the ``typogate`` of the tree at ``src``: its schema."""
    code = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r})\n"
        f"from ready import _fill; print(_fill({url!r}, {senders}, {per_sender}))"
    )
    return int(tree_output(src, code))


def _ready_seconds(src: Path, url: str, folder: Path) -> tuple[float, dict[str, float]]:
    """Start ``typogate policy`` on the store at ``url``: seconds until it answers, and
    the parts of the start its log line names (none from a revision before that line)."""
    port = free_port()
    argv = ["policy", "--listen", f"127.0.0.1:{port}", "--db", url]
    log = folder / "policy.log"
    started = time.perf_counter()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", typogate_code(argv)],
            env={**os.environ, "PYTHONPATH": str(src)},
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    try:
        while time.perf_counter() - started < _GIVE_UP:
            if process.poll() is not None:
                raise RuntimeError(f"typogate policy exited with status {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=_GIVE_UP) as client:
                    client.sendall(REQUEST)
                    if client.recv(4096).startswith(b"action="):
                        seconds = time.perf_counter() - started
                        parts = _PARTS.findall(log.read_text(errors="replace"))
                        return seconds, {part: float(value) for part, value in parts}
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
        stores: dict[str, dict[str, Path]] = {}  # size -> tree -> the store as made
        for senders in (int(n) for n in args.senders.split(",")):
            made = {}
            for tree, src in trees.items():
                path = folder / f"learned-{senders}-{len(made)}.db"
                stored = _fill_with(src, f"sqlite:///{path}", senders, args.per_sender)
                made[tree] = path
            stores[f"{senders} senders, {stored:,} relationships"] = made
        times: dict[tuple[str, str], list[float]] = {}
        rows: dict[str, None] = {}  # each start, then its parts
        for _ in range(args.rounds):
            for size, made in stores.items():
                for tree, src in trees.items():
                    used = folder / "started.db"
                    shutil.copyfile(made[tree], used)
                    for start in ("first start", "restart"):
                        seconds, parts = _ready_seconds(src, f"sqlite:///{used}", folder)
                        row = f"{size}: {start}"
                        rows[row] = None
                        times.setdefault((row, tree), []).append(seconds)
                        for part, value in parts.items():
                            part_row = f"· {part} ({size.partition(',')[0]}, {start})"
                            times.setdefault((part_row, tree), []).append(value)
                            if tree == HERE:  # the table's first column is the working tree's
                                rows[part_row] = None
    title = f"typogate policy: seconds from start to first answer, median of {args.rounds}"
    print_medians(title, "store", rows, trees, times, as_json=args.json)


if __name__ == "__main__":
    main()
