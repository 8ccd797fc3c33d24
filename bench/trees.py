"""Two revisions side by side in one run: the working tree's ``src`` and, with ``--against
REV``, that revision's, checked out into a temporary git worktree and removed afterwards
(``bench/startup.py``, ``bench/stop.py``); the ``typogate`` command as a ``python -c``
program, run with a tree's ``src`` first on ``PYTHONPATH``; and the table of medians."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
HERE = "working tree"


@contextmanager
def source_trees(against: str | None) -> Iterator[tuple[Path, dict[str, Path]]]:
    """A scratch folder, removed afterwards, and each tree's ``src`` by its name: the
    working tree's, and ``against``'s when given (checked out in the scratch folder)."""
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        trees = {HERE: REPO / "src"}
        if against is None:
            _compile(trees.values())
            yield scratch, trees
            return
        other = scratch / "against"
        git = ["git", "-C", str(REPO), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(other), against], check=True)
        trees[against] = other / "src"
        _compile(trees.values())
        try:
            yield scratch, trees
        finally:
            subprocess.run([*git, "remove", "--force", str(other)], check=True)


def _compile(sources: Iterable[Path]) -> None:
    """Byte-compile each tree first: a fresh worktree has no ``__pycache__``, and with
    ``PYTHONDONTWRITEBYTECODE`` set it would compile its code again in every process."""
    for src in sources:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True)


def tree_arguments(parser: argparse.ArgumentParser, rounds: int | None = None) -> None:
    """``--against REV`` (and ``--rounds``, when the bench takes turns) and ``--json``, as
    every side-by-side bench takes them."""
    if rounds is not None:
        parser.add_argument("--rounds", type=int, default=rounds, help="turns each tree takes")
    parser.add_argument("--against", help="a git revision measured beside the working tree")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def typogate_code(argv: list[str]) -> str:
    """A ``python -c`` program that runs ``typogate`` with ``argv`` as the console script
    does, whichever tree's ``src`` it imports."""
    return (
        f"import sys; sys.argv = ['typogate', *{argv!r}]\n"
        "from typogate.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )


def tree_output(src: Path, code: str, stdin: str | None = None) -> str:
    """What a ``python -c`` program prints when run with the tree at ``src`` first on
    ``PYTHONPATH`` (what that revision's code knows or makes), ``stdin`` its input."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(src)},
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def print_medians(
    title: str,
    what: str,
    rows: Iterable[str],
    trees: Iterable[str],
    times: dict[tuple[str, str], list[float]],
    *,
    as_json: bool,
    mib: Iterable[str] = (),
    **fields: str,
) -> None:
    """The median of each (row, tree)'s ``times``: the side-by-side table, or with
    ``as_json`` one JSON list of ``{what: row, "tree": tree, **fields, "seconds": median}``.
    The rows named in ``mib`` measure memory, in MiB (``"mib"`` in JSON), not seconds."""
    medians = {key: statistics.median(values) for key, values in times.items()}
    in_mib = set(mib)
    if as_json:
        print(
            json.dumps(
                [
                    {what: r, "tree": t, **fields, "mib" if r in in_mib else "seconds": m}
                    for (r, t), m in medians.items()
                ]
            )
        )
        return
    Console().print(_side_by_side(title, what, rows, trees, medians, in_mib))


def _side_by_side(
    title: str,
    what: str,
    rows: Iterable[str],
    trees: Iterable[str],
    medians: dict[tuple[str, str], float],
    in_mib: set[str],
) -> Table:
    """Seconds (or MiB) per row and tree, each other tree's also as a ratio to the working
    tree's."""
    table = Table(title=title, caption="side by side in one run; × = beside the working tree")
    table.add_column(what)
    names = list(trees)
    for tree in names:
        table.add_column(tree, justify="right")
    for row in rows:
        shown = "{:.0f} MiB" if row in in_mib else "{:.2f} s"
        here = medians[(row, HERE)]
        cells = [shown.format(here)]
        for tree in names[1:]:
            there = medians.get((row, tree))
            if there is None:  # a revision that does not measure this row
                cells.append("—")
            else:
                cells.append(f"{shown.format(there)} ({there / max(here, 0.01):.2f}×)")
        table.add_row(row, *cells)
    return table
