"""What a Guard's start-up costs in learned relationships: the seconds ``learn_relationships``
takes for a store of N senders with M correspondents each (as ``typogate serve`` and
``typogate learn`` load it), side by side in one run for the same store twice:

* delivered only: every correspondent was only written to, so each one learned is first
  matched against its one sender's other correspondents (a near-twin beside it may be that
  sender's saved slip, and then neither is learned);
* answered: the same correspondents with two replies each (``learning.proven_after``),
  which proves them without that look-up.

Then, in the same process, what learning costs while the gateway runs: 200 new domains,
each delivered to three times by three senders (``observe``), in milliseconds per domain
learned. Beside a store learned from deliveries alone, each one learned is also matched
against the correspondents learned earlier from deliveries (one of them may be its slip);
beside the answered store there are none.

    .venv/bin/python bench/learning.py [--senders 100,300,1000] [--per-sender 300] [--json]

Each measurement runs in a fresh process. Synthetic names (pronounceable, so some are near
each other, as real ones are).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Stored:
    """A relationship as the store hands it over."""

    sender: str
    recipient_domain: str
    count: int
    received: int
    released: int = 0
    last_seen: datetime = datetime.now(UTC)


def correspondents(senders: int, per_sender: int) -> list[tuple[str, str]]:
    """``(sender address, domain)`` for ``senders`` senders of example.org with
    ``per_sender`` correspondents each: synthetic names, pronounceable, so that some are
    near each other, as real ones are; the same for the same counts."""
    rng = random.Random(senders * per_sender)
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    pairs = []
    for number in range(senders):
        sender = f"user{number}@example.org"
        for _ in range(per_sender):
            name = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(4))
            pairs.append((sender, f"{name}.{rng.choice(['com', 'net', 'org'])}"))
    return pairs


def _store(senders: int, per_sender: int, received: int) -> list[Stored]:
    return [
        Stored(party, domain, count=3, received=received)
        for sender, domain in correspondents(senders, per_sender)
        for party in ("*", sender)
    ]


LEARNED_WHILE_RUNNING = 200


def _measure(args: tuple[int, int, int]) -> tuple[float, int, float]:
    from typogate import Config, Guard
    from typogate.vocabulary import Evidence

    senders, per_sender, received = args
    rows = _store(senders, per_sender, received)
    guard = Guard(Config())
    listed = guard.domain_count
    started = time.perf_counter()
    guard.learn_relationships(rows)
    seconds = time.perf_counter() - started
    learned = guard.domain_count - listed
    # New names of another shape (eight letters, .io), so that they are not near-twins of
    # the store's and each one is learned.
    rng = random.Random(-senders)
    new = {"".join(rng.choice("bcdfghjklmnprstvwz") for _ in range(8)) + ".io" for _ in range(400)}
    new_domains = sorted(new)[:LEARNED_WHILE_RUNNING]
    started = time.perf_counter()
    for domain in new_domains:
        for sender in ("ann", "bob", "cy"):
            guard.observe(f"{sender}@example.org", domain, Evidence.SENT)
    running = (time.perf_counter() - started) / LEARNED_WHILE_RUNNING
    assert guard.domain_count - listed - learned == LEARNED_WHILE_RUNNING
    return seconds, learned, running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", default="100,300,1000", help="sender counts, comma-separated")
    parser.add_argument("--per-sender", type=int, default=300, help="correspondents per sender")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    sizes = [int(n) for n in args.senders.split(",")]
    results = []
    context = multiprocessing.get_context("spawn")
    for senders in sizes:
        row: dict = {"senders": senders, "per_sender": args.per_sender}
        for name, received in (("delivered", 0), ("answered", 2)):
            with context.Pool(1) as pool:
                seconds, learned, running = pool.apply(
                    _measure, ((senders, args.per_sender, received),)
                )
            row[name] = {"seconds": seconds, "learned": learned, "running_ms": 1000 * running}
        results.append(row)
    if args.json:
        print(json.dumps(results))
        return
    table = Table(
        title="learn_relationships at start-up, same store side by side",
        caption="running: ms per domain learned while running, delivered only / answered",
    )
    for column in (
        "senders",
        "domains",
        "delivered only s",
        "learned",
        "answered s",
        "ratio",
        "running ms",
    ):
        table.add_column(column, justify="right")
    for row in results:
        delivered, answered = row["delivered"], row["answered"]
        table.add_row(
            f"{row['senders']:,}",
            f"{row['senders'] * row['per_sender']:,}",
            f"{delivered['seconds']:.1f}",
            f"{delivered['learned']:,}",
            f"{answered['seconds']:.1f}",
            f"{delivered['seconds'] / answered['seconds']:.2f}×",
            f"{delivered['running_ms']:.2f} / {answered['running_ms']:.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
