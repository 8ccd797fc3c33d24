"""How long a run of ``typogate learn`` takes on a store that already holds relationships:
seconds from starting the command to its exit, for stores of ``--senders`` senders with
``--per-sender`` correspondents each (``bench/ready.py``'s stores), and with ``--against
REV`` the same for another revision's ``src`` beside, in one run.

    .venv/bin/python bench/learn_run.py [--senders 100] [--rounds 3] [--against 86a752a] [--json]

Two runs per store, one after the other, as an admin makes them: the first learns a day's
log (``--messages`` deliveries from the store's own senders, half to their correspondents,
half to new domains, and a reply to one in ten) into a store no start has learned from
yet; the second, the next day's log, into the store the first left, with what its
learning kept. Each run weighs the replies against a Guard that knows the run's
deliveries, and learns again from every relationship at its end, so that the gateways'
next start takes it: the size of the store, not of the log, sets the time. Each tree's
stores are made by its own code and copied afresh for each round; the trees take turns
for ``--rounds`` rounds and each reports its median.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from learning import correspondents
from ready import made_stores
from trees import print_medians, source_trees, tree_arguments, typogate_code

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from postfix_lines import inbound_line, outbound_line  # noqa: E402

_DAYS = ("first day's log", "next day's log")


def _day_log(path: Path, day: int, senders: int, per_sender: int, messages: int) -> None:
    """A day's Postfix log: ``messages`` deliveries by the store's senders, half to their
    own correspondents and half to new domains, and a reply to one in ten."""
    rng = random.Random(day)
    known = correspondents(senders, per_sender)
    lines = []
    for n in range(messages):
        sender, domain = rng.choice(known)
        if n % 2:
            domain = f"day{day}-new{n}.example"
        lines.append(outbound_line(n, sender, f"someone@{domain}"))
        if n % 10 == 0:
            lines.append(inbound_line(n, f"someone@{domain}", sender))
    stamp = f"Mar {day:2d}"
    path.write_text("".join(lines).replace("Mar  1", stamp))


def _learn(src: Path, url: str, log: Path) -> float:
    """Seconds ``typogate learn`` of the tree at ``src`` takes over ``log``."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", typogate_code(["learn", str(log), "--db", url, "--json"])],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        check=True,
        timeout=1800,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", default="100", help="sender counts, comma-separated")
    parser.add_argument("--per-sender", type=int, default=300, help="correspondents per sender")
    parser.add_argument("--messages", type=int, default=2000, help="deliveries in a day's log")
    tree_arguments(parser, rounds=3)
    args = parser.parse_args()
    with source_trees(args.against) as (folder, trees):
        stores = made_stores(folder, trees, args.senders, args.per_sender)
        for size in stores:
            senders = int(size.partition(" ")[0])
            for day in (1, 2):
                log = folder / f"{senders}-{day}.log"
                _day_log(log, day, senders, args.per_sender, args.messages)
        times: dict[tuple[str, str], list[float]] = {}
        rows = [f"{size}: {day}" for size in stores for day in _DAYS]
        for _ in range(args.rounds):
            for size, made in stores.items():
                senders = int(size.partition(" ")[0])
                for tree, src in trees.items():
                    used = folder / "learning.db"
                    for stale in ("", "-wal", "-shm"):
                        Path(f"{used}{stale}").unlink(missing_ok=True)
                    shutil.copyfile(made[tree], used)
                    for day, name in enumerate(_DAYS, start=1):
                        log = folder / f"{senders}-{day}.log"
                        seconds = _learn(src, f"sqlite:///{used}", log)
                        times.setdefault((f"{size}: {name}", tree), []).append(seconds)
        print_medians(
            f"typogate learn of a day's log ({args.messages:,} deliveries), by store",
            "store: run",
            rows,
            trees,
            times,
            as_json=args.json,
        )


if __name__ == "__main__":
    main()
