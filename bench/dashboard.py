"""Dashboard pages with a million stored events: time to answer each page and API view,
measured against the real `typogate web` server (SQLite, and PostgreSQL when installed).

    .venv/bin/python bench/dashboard.py [--events 1000000] [--requests 20] [--json]

The store is filled through Store.record (the gateway's own path, with store.keep_allowed
on, so all the events are rows, not only the alerts): 90 days of verdicts,
5% of them alerts over 400 typo domains from 2,000 senders, 200 held messages. Target: every
page in < 300 ms (the median and the 95th percentile of --requests sequential requests).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from web_views import signed_in, stores, timed  # noqa: E402

from typogate.store import HeldMessage, Store, VerdictEvent  # noqa: E402
from typogate.vocabulary import HoldSource  # noqa: E402

TARGET_MS = 300.0
VIEWS = [
    "/",
    "/?days=90",
    "/holds",
    "/events",
    "/events?action=reject",
    "/events?domain=army.ml",
    "/pairs?days=90",
    "/correspondents",
    "/rules",
    "/api/stats",
    "/api/events?limit=200",
    "/api/pairs?days=90",
    "/api/holds",
    "/metrics",
]


def fill(url: str, events: int, seed: int = 7) -> float:
    """Record ``events`` verdicts and 200 holds; returns the seconds it took."""
    rng = random.Random(seed)
    legit = [f"partner{n}.example.com" for n in range(3000)]
    typos = [(f"army{n}.ml", "army.mil") for n in range(200)] + [
        (f"gmial{n}.com", "gmail.com") for n in range(200)
    ]
    typos[0] = ("army.ml", "army.mil")
    senders = [f"user{n}@agency.gov" for n in range(2000)]
    now = datetime.now(UTC)
    started = time.perf_counter()
    store = Store(url, keep_allowed=True)  # a row for every event, allowed ones too
    with Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task("filling the store", total=events)
        for n in range(events):
            when = now - timedelta(seconds=(events - n) * 90 * 86400 / events)
            sender = rng.choice(senders)
            if rng.random() < 0.05:
                domain, meant = rng.choice(typos)
                action = rng.choice(("warn", "hold", "reject", "reject"))
                event = VerdictEvent(
                    f"x@{domain}",
                    domain,
                    action,
                    "typo.suffix",
                    "policy",
                    sender=sender,
                    suggestion=meant,
                    score=0.97,
                    time=when.timestamp(),
                )
            else:
                domain = rng.choice(legit)
                event = VerdictEvent(
                    f"x@{domain}",
                    domain,
                    "allow",
                    "allowed.unknown",
                    "policy",
                    sender=sender,
                    time=when.timestamp(),
                )
            store.record(event)
            if n % 50_000 == 0:
                store.flush(timeout=600)  # bounded memory in the queue
                progress.update(task, completed=n)
        store.flush(timeout=600)
        progress.update(task, completed=events)
    for n in range(200):
        domain, meant = typos[n % len(typos)]
        store.hold(
            HeldMessage(
                f"bench-{n}",
                HoldSource.POSTFIX_HOLD,
                senders[n],
                (f"x@{domain}",),
                ("typo.suffix",),
                (meant,),
                queue_id=f"Q{n:08X}",
            )
        )
    store.close()
    return time.perf_counter() - started


def measure(url: str, requests: int) -> dict[str, dict[str, float]]:
    """Start `typogate web` on ``url`` and time each view, signed in."""
    with signed_in(url, "dashboard", timeout=60) as client:
        return {view: timed(client, view, requests, warm=3) for view in VIEWS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict = {"events": args.events, "backends": {}}
    with stores("dashboard", postgres=not args.no_postgres) as urls:
        for name, url in urls.items():
            seconds = fill(url, args.events)
            report["backends"][name] = {
                "fill_seconds": seconds,
                "views": measure(url, args.requests),
            }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    table = Table(
        title=f"Dashboard views with {args.events:,} stored events (target < {TARGET_MS:.0f} ms)"
    )
    table.add_column("view")
    for name in report["backends"]:
        table.add_column(f"{name} median ms", justify="right")
        table.add_column(f"{name} p95 ms", justify="right")
    worst = 0.0
    for view in VIEWS:
        cells = []
        for result in report["backends"].values():
            row = result["views"][view]
            worst = max(worst, row["p95_ms"])
            cells += [f"{row['median_ms']:.1f}", f"{row['p95_ms']:.1f}"]
        table.add_row(view, *cells)
    console = Console(width=120)
    console.print(table)
    for name, result in report["backends"].items():
        console.print(f"{name}: filled in {result['fill_seconds']:.0f} s through Store.record")
    verdict = "[green]met[/]" if worst < TARGET_MS else "[red]missed[/]"
    console.print(f"slowest p95: {worst:.1f} ms — target {verdict}")


if __name__ == "__main__":
    main()
