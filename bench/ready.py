"""How long a start keeps Postfix waiting: seconds from starting ``typogate policy`` on a
store of learned relationships to its first answer, for stores of ``--senders`` senders
with ``--per-sender`` correspondents each (learned from deliveries alone, at the three
levels a store keeps: the organisation, the sender's domain and the sender's address), and
with ``--against REV`` the same for another revision's ``src`` beside, in one run.

    .venv/bin/python bench/ready.py [--senders 100,300] [--rounds 3] [--against 9ebe2ea] [--json]

Four starts per store: the first, which learns from every relationship and builds the
index of the lists (as after an upgrade, or a new configuration: what ``typogate doctor``
weighs against Postfix's wait); a restart on the same store, which may take what the first
kept (policy/kept.py, and the index: policy/index_cache.py); a start
whose kept set is 13 hours old, as after half a day of running, which answers one request
after another for ``--running`` seconds (its slowest answer is shown: a gateway learns
again meanwhile, runtime.py); and a restart 12 hours later still, as at the end of a day
of running. Below each start, the parts of it as its log line gives them (a revision from
before that line shows "—"), and the most memory its process held at once (``VmHWM``: the
Guards live in it; the store's writer is another process); after the running, also what it
still holds, and after half of ``--reloads`` and all of them, one after another (SIGHUP:
each builds a whole Guard beside the one in use, as the learning twice a day does; a month
of running learns about 60 times). Each tree's stores are made by its own code (the schemas of
two revisions may differ) and copied afresh for each round; the trees take turns for
``--rounds`` rounds and each reports its median. The names are ``bench/learning.py``'s
(``correspondents``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from memory import memory_mib  # noqa: E402
from mta import read_policy_answer  # noqa: E402
from ports import free_port  # noqa: E402

REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
    b"sender=user0@example.org\nrecipient=john@army.ml\n\n"
)
_GIVE_UP = 600.0
_RUNNING = "start on a set 13 h old"
# Each start on a store, and how many hours older its kept set is made first.
_STARTS = (("first start", 0), ("restart", 0), (_RUNNING, 13), ("restart 12 h later", 12))
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


def made_stores(
    folder: Path, trees: dict[str, Path], senders: str, per_sender: int
) -> dict[str, dict[str, Path]]:
    """For each of the ``senders`` counts (comma-separated), a store in ``folder`` made by
    each tree's code (:func:`_fill_with`): its name ("100 senders, 89,988
    relationships") -> tree -> the store's path."""
    stores: dict[str, dict[str, Path]] = {}
    for count in (int(n) for n in senders.split(",")):
        made = {}
        for tree, src in trees.items():
            path = folder / f"learned-{count}-{len(made)}.db"
            stored = _fill_with(src, f"sqlite:///{path}", count, per_sender)
            made[tree] = path
        stores[f"{count} senders, {stored:,} relationships"] = made
    return stores


@dataclass
class _Started:
    """A ``typogate policy`` that answered: where, after how long, and the parts of its
    start that its log line names (none from a revision before that line)."""

    port: int
    seconds: float
    parts: dict[str, float]
    pid: int
    log: Path

    def memory(self, field: str) -> float:
        """What the process holds (``VmRSS``) or held at most (``VmHWM``), in MiB. The
        Guards live in this process (the store's writer is another)."""
        return memory_mib(self.pid, field)


@contextmanager
def _policy(src: Path, url: str, folder: Path) -> Iterator[_Started]:
    """Start ``typogate policy`` on the store at ``url``; yields it once it answered.
    Stopped on leaving."""
    port = free_port()
    argv = ["policy", "--listen", f"127.0.0.1:{port}", "--db", url]
    log = folder / "policy.log"
    started = time.perf_counter()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", typogate_code(argv)],
            env={**os.environ, "PYTHONPATH": str(src), "XDG_CACHE_HOME": str(folder / "cache")},
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
                        first = log.read_text(errors="replace").partition("ready in")[2]
                        parts = _PARTS.findall(first.partition("\n")[0])
                        taken = {part: float(value) for part, value in parts}
                        yield _Started(port, seconds, taken, process.pid, log)
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"typogate policy did not answer within {_GIVE_UP:g} s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _slowest_answer(port: int, seconds: float) -> float:
    """Ask one request after another on one connection, as Postfix does, for ``seconds``:
    the slowest answer's seconds."""
    slowest = 0.0
    with socket.create_connection(("127.0.0.1", port), timeout=_GIVE_UP) as client:
        end = time.perf_counter() + seconds
        while (asked := time.perf_counter()) < end:
            client.sendall(REQUEST)
            read_policy_answer(client)
            slowest = max(slowest, time.perf_counter() - asked)
    return slowest


def _reload(started: _Started, times: int) -> list[float]:
    """Reload the configuration ``times``, one after another, as SIGHUP does (each builds
    a whole Guard beside the one in use, as a learning does); the MiB the process holds
    after each."""
    held = []
    for _ in range(times):
        done = started.log.read_text(errors="replace").count(" reload: ")
        os.kill(started.pid, signal.SIGHUP)
        waited = time.perf_counter()
        while started.log.read_text(errors="replace").count(" reload: ") == done:
            if time.perf_counter() - waited > _GIVE_UP:
                raise RuntimeError(f"typogate policy did not reload within {_GIVE_UP:g} s")
            time.sleep(0.05)
        held.append(started.memory("VmRSS"))
    return held


def _age_kept(path: Path, hours: float) -> None:
    """Make the learned set kept in the SQLite store at ``path`` ``hours`` older: as if
    that much time went by."""
    # Closed, not only committed: the next round copies another store over this file.
    with closing(sqlite3.connect(path)) as connection, connection:
        (as_of,) = connection.execute("SELECT as_of FROM learned_sets").fetchone()
        older = datetime.fromisoformat(as_of) - timedelta(hours=hours)
        connection.execute("UPDATE learned_sets SET as_of = ?", (older.isoformat(" "),))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", default="100,300", help="sender counts, comma-separated")
    parser.add_argument("--per-sender", type=int, default=300, help="correspondents per sender")
    parser.add_argument(
        "--running", type=float, default=40.0, help="seconds of answers on the half-day-old set"
    )
    parser.add_argument(
        "--reloads", type=int, default=10, help="reloads after the running, then its memory"
    )
    tree_arguments(parser, rounds=3)
    args = parser.parse_args()
    with source_trees(args.against) as (folder, trees):
        stores = made_stores(folder, trees, args.senders, args.per_sender)
        times: dict[tuple[str, str], list[float]] = {}
        rows: dict[str, None] = {}  # each start, then its parts
        mib: set[str] = set()  # the rows in MiB

        def record(row: str, tree: str, value: float, *, in_mib: bool = False) -> None:
            if tree == HERE:  # the table's rows are the working tree's
                rows[row] = None
            times.setdefault((row, tree), []).append(value)
            if in_mib:
                mib.add(row)

        for _ in range(args.rounds):
            for size, made in stores.items():
                senders = size.partition(",")[0]
                for tree, src in trees.items():
                    used = folder / "started.db"
                    for stale in ("-wal", "-shm"):  # a last start's, beside the copy
                        Path(f"{used}{stale}").unlink(missing_ok=True)
                    shutil.copyfile(made[tree], used)
                    shutil.rmtree(folder / "cache", ignore_errors=True)  # no index kept yet
                    for start, older in _STARTS:
                        if older:
                            _age_kept(used, older)
                        with _policy(src, f"sqlite:///{used}", folder) as started:
                            if start == _RUNNING:
                                slowest = _slowest_answer(started.port, args.running)
                                held = started.memory("VmRSS")
                            peak = started.memory("VmHWM")  # the start's, and its running's
                            if start == _RUNNING:
                                reloaded = _reload(started, args.reloads)
                        record(f"{size}: {start}", tree, started.seconds)
                        for part, value in started.parts.items():
                            record(f"· {part} ({senders}, {start})", tree, value)
                        record(f"· peak memory ({senders}, {start})", tree, peak, in_mib=True)
                        if start == _RUNNING:
                            running = f"{args.running:g} s of running ({senders})"
                            record(f"· slowest answer in {running}", tree, slowest)
                            record(f"· memory held after {running}", tree, held, in_mib=True)
                            # Halfway and at the end: memory that levels off, or grows.
                            for count in sorted({max(1, args.reloads // 2), args.reloads}):
                                after = f"· ... and after {count} reloads ({senders})"
                                record(after, tree, reloaded[count - 1], in_mib=True)
    title = (
        f"typogate policy: seconds from start to first answer, and the memory of its "
        f"process, median of {args.rounds}"
    )
    print_medians(title, "store", rows, trees, times, as_json=args.json, mib=mib)


if __name__ == "__main__":
    main()
