"""What the ``typogate`` command costs before it does anything: wall-clock seconds of a fresh
process for the bare interpreter, ``import typogate`` and a few commands, side by side in
one run, and with ``--against REV`` the same for another revision's ``src`` beside.
``typogate check`` runs twice: as every start after the first (the index of the lists
kept by the one before: ``policy/index_cache.py``) and as a first start, with no index
kept; each tree keeps its indexes in a scratch folder of its own. For ``check``, also the
most memory its process held at once (``ru_maxrss``).

    .venv/bin/python bench/startup.py [--rounds 7] [--against 0af47d3] [--json]

Each command runs as the console script runs it (``typogate.cli.main`` with its argv), in
a fresh interpreter whose ``PYTHONPATH`` is the revision's ``src``. The variants take turns
for ``--rounds`` rounds and each reports its median, so a noisy second on this shared
machine does not land on one of them only. ``--against`` checks the revision out into a
temporary git worktree and removes it afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from trees import print_medians, source_trees, tree_arguments, typogate_code

COMMANDS = {
    "python -c pass": None,
    "import typogate": "import typogate",
    "typogate --help": ["--help"],
    "typogate holds --help": ["holds", "--help"],
    "typogate check army.ml": ["check", "--json", "john@army.ml"],
    "typogate check, first start": ["check", "--json", "john@army.ml"],
    "typogate holds (a store)": ["holds", "--db", "{store}"],
}


def _code(command: str | list[str] | None, store: str) -> str:
    if command is None:
        return "pass"
    if isinstance(command, str):
        return command
    return typogate_code([word.replace("{store}", store) for word in command])


def _run(src: Path, code: str, cache: Path) -> tuple[float, float]:
    """Seconds the process took, and the most memory it held at once (MiB)."""
    env = {**os.environ, "PYTHONPATH": str(src), "XDG_CACHE_HOME": str(cache)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, cwd=src
    )
    _, status, usage = os.wait4(process.pid, 0)  # this process's own peak, not its siblings'
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, code)
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tree_arguments(parser, rounds=7)
    args = parser.parse_args()
    with source_trees(args.against) as (scratch, trees):
        # Each tree's own SQLite store, made (and migrated) by that tree's code.
        stores = {tree: f"sqlite:///{scratch}/store-{n}.db" for n, tree in enumerate(trees)}
        caches = {tree: scratch / f"cache-{n}" for n, tree in enumerate(trees)}
        for tree, src in trees.items():
            code = f"from typogate.store import Store; Store({stores[tree]!r}).close()"
            _run(src, code, caches[tree])
        times: dict[tuple[str, str], list[float]] = {}
        rows = dict.fromkeys(COMMANDS)
        for turn in range(args.rounds):
            for name, command in COMMANDS.items():
                # The trees take turns going first: the second of two runs in a row was
                # the faster one by 5-10% with the same code in both.
                order = list(trees.items())
                for tree, src in order if turn % 2 == 0 else reversed(order):
                    if name.endswith("first start"):
                        shutil.rmtree(caches[tree], ignore_errors=True)
                    code = _code(command, stores[tree])
                    seconds, peak = _run(src, code, caches[tree])
                    times.setdefault((name, tree), []).append(seconds)
                    if name.startswith("typogate check"):
                        rows[f"· peak memory ({name})"] = None
                        times.setdefault((f"· peak memory ({name})", tree), []).append(peak)
    title = f"typogate start-up: median of {args.rounds} fresh processes"
    mib = [row for row in rows if row.startswith("· peak memory")]
    print_medians(title, "command", rows, trees, times, as_json=args.json, mib=mib)


if __name__ == "__main__":
    main()
