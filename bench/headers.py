"""How long a To or Cc header takes to read for its display names, a hostile one too:
typogate's one-pass reader (``typogate.domains.display_names``, which the milter uses)
beside the standard library's header parser (``email.policy.default``, which the first
version of the milter used), on the same headers in one run; and typogate's reader with
each name judged (``Guard.evaluate(address, shown_as=name)``), as the milter judges it.

    .venv/bin/python bench/headers.py [--sizes 10000,100000] [--limit 20] [--json]

Each header is read once, each reader in a process of its own, stopped after ``--limit``
seconds. A well-formed header of many named recipients is the control; the others are the
shapes a hostile sender writes: quotes, nested comments, angle brackets, @-signs,
backslashes, encoded-word starts, names of spaces, each run to the header's size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

READERS = {
    "typogate": "from typogate.domains import display_names as read\n",
    # And each name judged, as the milter judges it: the reading of an address in it.
    "typogate, judged": (
        "from typogate import Guard, InvalidAddress\n"
        "from typogate.domains import display_names\n"
        "guard = Guard()\n"
        "def judged(address, name):\n"
        "    try:\n"
        "        return guard.evaluate(address, shown_as=name).action\n"
        "    except InvalidAddress:\n"
        "        return None  # the milter answers it as unreadable\n"
        "def read(value):\n"
        "    return [judged(a, n) for n, a in display_names(value)]\n"
    ),
    "email.policy": (
        "import email.policy\n"
        "def read(value):\n"
        "    header = email.policy.default.header_factory('to', value)\n"
        "    return [(a.display_name, a.addr_spec) for a in header.addresses]\n"
    ),
}
TIMED = (
    "import sys, time\n"
    "value = sys.stdin.read()\n"
    "started = time.perf_counter()\n"
    "try:\n"
    "    found = read(value)\n"
    "    print(time.perf_counter() - started, len(found))\n"
    "except RecursionError:\n"
    "    print('RecursionError')\n"
)


def _headers(size: int) -> dict[str, str]:
    """Each shape, ``size`` characters long or about."""
    named = '"u{0}@army.mil" <u{0}@evil{0}.com>'
    control, i = [], 0
    while sum(len(part) + 2 for part in control) < size:
        control.append(named.format(i))
        i += 1
    half = size // 2
    return {
        "named recipients (control)": ", ".join(control),
        "quotes": '"' * size + "@",
        "nested comments": "(" * half + "a@b" + ")" * half,
        "angle brackets": "<" * size + "a@b.c",
        "@-signs": "@" * size,
        "backslashes in quotes": '"' + "\\" * size + '@x" <a@b.c>',
        "encoded-word starts": "=?" * half + " <a@b.c>",
        # Names of 4,000 spaces between two letters (a name is cut to 4,096 characters
        # and trimmed), which a reader of spaces around an @-sign reads through.
        "spaces in names": ", ".join(
            f'"a{" " * 4000}b@army.mil" <a{i}@evil.com>' for i in range(size // 4030 + 1)
        ),
    }


def _read(reader: str, header: str, limit: float) -> str:
    """How long ``reader`` took on ``header``, in its own process: seconds, or why not."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", READERS[reader] + TIMED],
            input=header,
            capture_output=True,
            text=True,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        return f"> {limit:g} s"
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1][:40]
    words = done.stdout.split()
    return words[0] if words == ["RecursionError"] else f"{float(words[0]) * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="header lengths, characters")
    parser.add_argument("--limit", type=float, default=20.0, help="seconds per read")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    started = time.monotonic()
    for size in (int(text) for text in args.sizes.split(",")):
        for shape, header in _headers(size).items():
            row = {"shape": shape, "characters": len(header)}
            row.update({reader: _read(reader, header, args.limit) for reader in READERS})
            rows.append(row)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(
        title="Reading a To header for its display names",
        caption=f"each read in its own process, one run ({time.monotonic() - started:.0f} s)",
    )
    for column in ("shape", "characters", *READERS):
        table.add_column(column, justify="left" if column == "shape" else "right")
    for row in rows:
        table.add_row(row["shape"], f"{row['characters']:,}", *(row[r] for r in READERS))
    Console(width=80).print(table)


if __name__ == "__main__":
    main()
