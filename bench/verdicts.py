"""Which real domains change verdict between two trees: every domain of the month's universe
(``bench/month.py``'s npm lists, ``free-email-domains`` and ``disposable-email-domains``,
and its .gov and .mil lists), judged by ``typogate check --json`` with the default
configuration, one process per tree, side by side in one run.

    .venv/bin/python bench/verdicts.py --against 931eefb [--json]

A change of decision there is a false alarm gained or lost, or a look-alike someone
registered: read them. Without ``--against`` it counts the working tree's alerts alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from month import install_lists, universe
from rich.console import Console
from rich.table import Table
from trees import HERE, source_trees, tree_arguments, tree_output, typogate_code


def _judged(src: Path, domains: list[str]) -> list[tuple[str, str, str | None]]:
    """(action, reason, suggestion) for each domain, from one process of the tree at ``src``."""
    lines = "".join(f"a@{domain}\n" for domain in domains)
    out = tree_output(src, typogate_code(["check", "--json"]), stdin=lines)
    answers = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(answers) == len(domains), f"{len(answers)} answers for {len(domains)} domains"
    return [(a["action"], a["reason"], a.get("suggestion")) for a in answers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    tree_arguments(parser)
    args = parser.parse_args()
    console = Console(stderr=args.json)
    kinds, _ = universe(install_lists(console))
    domains = sorted({domain for names in kinds.values() for domain in names})
    with source_trees(args.against) as (_, trees):
        judged = {tree: _judged(src, domains) for tree, src in trees.items()}
    alerts = {
        tree: sum(action != "allow" for action, _, _ in verdicts)
        for tree, verdicts in judged.items()
    }
    changed = []
    if args.against:
        for domain, mine, theirs in zip(domains, judged[HERE], judged[args.against], strict=True):
            if mine[:2] != theirs[:2]:
                changed.append((domain, theirs, mine))
    if args.json:
        print(
            json.dumps(
                {
                    "domains": len(domains),
                    "alerts": alerts,
                    "changed": [
                        {"domain": d, args.against: list(theirs), HERE: list(mine)}
                        for d, theirs, mine in changed
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    for tree, count in alerts.items():
        console.print(f"{tree}: {count:,} of {len(domains):,} real domains alerted")
    if not args.against:
        return
    table = Table(title=f"Verdicts that change, {args.against} -> {HERE}")
    table.add_column("change")
    table.add_column("domains", justify="right")
    table.add_column("for example")
    by_change: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for domain, theirs, mine in changed:
        change = f"{theirs[1]} -> {mine[1]}"
        by_change[change] += 1
        examples.setdefault(change, domain)
    for change, count in by_change.most_common():
        table.add_row(change, f"{count:,}", examples[change])
    console.print(table)
    console.print(f"{len(changed):,} of {len(domains):,} verdicts change")


if __name__ == "__main__":
    sys.exit(main())
