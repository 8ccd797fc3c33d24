"""What the ``typogate`` command costs before it does anything: wall-clock seconds of a fresh
process for the bare interpreter, ``import typogate`` and a few commands, side by side in
one run, and with ``--against REV`` the same for another revision's ``src`` beside.
``typogate check`` runs twice: as every start after the first (the index of the lists
kept by the one before: ``policy/index_cache.py``) and as a first start, with no index
kept; each tree keeps its indexes in a scratch folder of its own.

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
import tempfile
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


def _seconds(src: Path, code: str, cache: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "XDG_CACHE_HOME": str(cache)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL, cwd=src
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tree_arguments(parser, rounds=7)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as scratch,
        source_trees(Path(scratch), args.against) as trees,
    ):
        # Each tree's own SQLite store, made (and migrated) by that tree's code.
        stores = {tree: f"sqlite:///{scratch}/store-{n}.db" for n, tree in enumerate(trees)}
        caches = {tree: Path(scratch) / f"cache-{n}" for n, tree in enumerate(trees)}
        for tree, src in trees.items():
            code = f"from typogate.store import Store; Store({stores[tree]!r}).close()"
            _seconds(src, code, caches[tree])
        times: dict[tuple[str, str], list[float]] = {}
        for turn in range(args.rounds):
            for name, command in COMMANDS.items():
                # The trees take turns going first: the second of two runs in a row was
                # the faster one by 5-10% with the same code in both.
                order = list(trees.items())
                for tree, src in order if turn % 2 == 0 else reversed(order):
                    if name.endswith("first start"):
                        shutil.rmtree(caches[tree], ignore_errors=True)
                    code = _code(command, stores[tree])
                    times.setdefault((name, tree), []).append(_seconds(src, code, caches[tree]))
    title = f"typogate start-up: median of {args.rounds} fresh processes"
    print_medians(title, "command", COMMANDS, trees, times, as_json=args.json)


if __name__ == "__main__":
    main()
