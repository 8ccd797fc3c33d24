"""Holds asked for while the store has stopped answering: a policy service on a PostgreSQL
frozen with SIGSTOP (as a server stuck on its disk is, its connections open), asked for
``--requests`` holds at once; how long each answer took. With ``--against REV`` the same
for another revision's ``src`` beside, in one run.

    .venv/bin/python bench/frozen_store.py [--requests 30] [--bound 1] [--against 8a06e60] [--json]

``--bound`` is ``limits.hold_record_seconds``. Postfix waits its policy ``timeout`` (10 s
as docs/postfix.md sets it) for each answer, then applies its ``default_action``; a
revision without the bound gives no answer until the server runs again (this bench
thaws it after 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table
from trees import source_trees, tree_arguments, tree_output, typogate_code

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from mta import policy_answer  # noqa: E402
from ports import free_port, wait_for_port  # noqa: E402
from postgres import PostgresServer  # noqa: E402

GIVE_UP = 30.0  # seconds after which a request counts as never answered


def _ask(port: int, recipient: str) -> tuple[float, str]:
    """One hold request (a rule holds navy.ml): seconds to the answer, and the answer."""
    started = time.monotonic()
    try:
        answer = policy_answer(port, recipient, "alice@example.org", timeout=GIVE_UP).strip()
    except TimeoutError:
        answer = "(none)"
    return time.monotonic() - started, answer


def _measure(src: Path, requests: int, bound: float, folder: Path) -> list[tuple[float, str]]:
    """The answers to ``requests`` holds at once, with ``src``'s typogate, store frozen."""
    postgres = PostgresServer()
    postgres.start()
    port = free_port()
    config = folder / "typogate.toml"
    limits = f"[limits]\nhold_record_seconds = {bound}\n" if _has_bound(src) else ""
    config.write_text('[[rules]]\ndomain = "navy.ml"\naction = "hold"\n' + limits)
    argv = ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(config)]
    process = subprocess.Popen(
        [sys.executable, "-c", typogate_code([*argv, "--db", postgres.url])],
        env={**os.environ, "PYTHONPATH": str(src)},
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60)
        if not _ask(port, "sam@navy.ml")[1].startswith("action=HOLD "):
            raise RuntimeError("no hold while the store answers")
        postgres.freeze()
        try:
            with ThreadPoolExecutor(requests) as pool:
                asked = [pool.submit(_ask, port, f"u{n}@navy.ml") for n in range(requests)]
                return [future.result() for future in asked]
        finally:
            postgres.thaw()
    finally:
        process.terminate()
        process.wait(timeout=60)
        postgres.remove()


def _has_bound(src: Path) -> bool:
    """Whether ``src``'s configuration knows limits.hold_record_seconds (an older one
    refuses the key, as it refuses every key it does not know)."""
    return tree_output(src, _KNOWS_BOUND).strip() == "True"


_KNOWS_BOUND = (
    "from typogate.config import Limits; print('hold_record_seconds' in Limits.model_fields)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="hold requests at once")
    parser.add_argument("--bound", type=float, default=1.0, help="limits.hold_record_seconds")
    tree_arguments(parser)
    args = parser.parse_args()
    rows = []
    with source_trees(args.against) as (scratch, trees):
        for tree, src in trees.items():
            answers = _measure(src, args.requests, args.bound, Path(tempfile.mkdtemp(dir=scratch)))
            waits = [seconds for seconds, _ in answers]
            rows.append(
                {
                    "tree": tree,
                    "requests": args.requests,
                    "answered_451": sum(a.startswith("action=451 ") for _, a in answers),
                    "unanswered": sum(answer == "(none)" for _, answer in answers),
                    "median_seconds": statistics.median(waits),
                    "slowest_seconds": max(waits),
                    "waited_the_bound": sum(seconds >= 0.9 * args.bound for seconds in waits),
                }
            )
    if args.json:
        print(json.dumps(rows))
        return
    table = Table(
        title=f"{args.requests} holds at once, store frozen (hold_record_seconds = {args.bound:g})",
        caption="side by side in one run; Postfix gives up on an answer after its timeout",
    )
    for column in ("tree", "answered 451", "unanswered", "median s", "slowest s", "waited"):
        table.add_column(column, justify="left" if column == "tree" else "right")
    for row in rows:
        table.add_row(
            row["tree"],
            str(row["answered_451"]),
            str(row["unanswered"]),
            f"{row['median_seconds']:.2f}",
            f"{row['slowest_seconds']:.2f}",
            str(row["waited_the_bound"]),
        )
    Console().print(table)


if __name__ == "__main__":
    main()
