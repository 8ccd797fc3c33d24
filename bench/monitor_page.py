"""The monitor's page and API after a month of nightly runs over a large protected list:
time to answer each view, measured against the real `typogate web` server (SQLite, and
PostgreSQL when installed).

    .venv/bin/python bench/monitor_page.py [--protected 1500] [--runs 30] [--requests 20]

The store is filled through LookAlikeSnapshots.record (the path `typogate monitor` takes):
--protected domains (1,500 is about the federal .gov and .mil list) with 10 look-alikes
that exist each, over --runs nightly runs (a snapshot keeps every look-alike that exists,
so 30 runs of that list are 450,000 rows); each night about 1% of the look-alikes change
state, appear or go. Target: every page view and the API for one protected domain in
< 300 ms (median and 95th percentile of --requests sequential requests), as for the other
dashboard pages (bench/dashboard.py). The whole API answer (every look-alike and every
suggested rule) is an export: its time grows with what it holds, and is shown beside.
Each look-alike that takes mail was probed (`--probe-smtp`): one in ten takes any
recipient. Then what `typogate monitor` reads before a run (each look-alike's latest state
and its server's last answer to the probe) is timed, and the runs older than --keep-days
(7) are forgotten once, as `typogate monitor` does after a run (there with 90 days).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from web_views import signed_in, stores, timed  # noqa: E402

from typogate.store import Store  # noqa: E402
from typogate.store.records import SeenLookAlike  # noqa: E402
from typogate.vocabulary import Probe  # noqa: E402

TARGET_MS = 300.0
STATES = ("mx", "a_only", "no_mail", "null_mx")
LOOK_ALIKES = 10
FIRST_NIGHT = datetime(2026, 1, 1, 2, tzinfo=UTC)


EXPORT = "/api/monitor"


def views(protected: int) -> list[str]:
    last_page = max(1, -(-protected // 25))
    return [
        "/monitor",
        f"/monitor?page={last_page}",
        "/monitor?intended=org00042.gov",
        "/monitor?run=1",
        "/api/monitor?intended=org00042.gov",
        EXPORT,
    ]


def fill(url: str, protected: int, runs: int, seed: int = 11) -> float:
    """Record ``runs`` nightly snapshots; returns the seconds it took."""
    rng = random.Random(seed)
    store = Store(url, writer=False)
    started = time.perf_counter()
    names = [f"org{n:05}.gov" for n in range(protected)]
    # domain -> (intended, rank, state); a state of None: gone (nxdomain) this night
    facts: dict[str, tuple[str, int, str | None]] = {
        f"org{n:05}{rank}.com": (name, rank * 7, rng.choice(STATES))
        for n, name in enumerate(names)
        for rank in range(1, LOOK_ALIKES + 1)
    }
    night = FIRST_NIGHT
    for run in range(runs):
        changes = {domain: "new" for domain in facts} if run == 0 else {}
        if run:
            for domain in rng.sample(sorted(facts), len(facts) // 100):
                intended, rank, state = facts[domain]
                if state is None:
                    facts[domain] = (intended, rank, rng.choice(STATES))
                    changes[domain] = "new"
                elif rng.random() < 0.3:
                    facts[domain] = (intended, rank, None)
                    changes[domain] = "gone"
                else:
                    facts[domain] = (intended, rank, rng.choice(STATES))
                    changes[domain] = "changed"
        seen = [
            SeenLookAlike(
                domain, domain, intended, 1 / rank, rank, state or "nxdomain",
                (f"mx.{domain}",) if state == "mx" else (), state == "mx", False,
                probed(domain, state), changes.get(domain, "same"),
            )
            for domain, (intended, rank, state) in facts.items()
            if state is not None or changes.get(domain) == "gone"
        ]  # fmt: skip
        store.look_alikes.record(
            night, night + timedelta(minutes=3), protected, protected * 200, seen
        )
        night += timedelta(days=1)
    store.close()
    return time.perf_counter() - started


def probed(domain: str, state: str | None) -> str | None:
    """The probe's answer for a look-alike that takes mail: one in ten takes any recipient."""
    if state not in ("mx", "a_only"):
        return None
    return "accepts_all" if zlib.crc32(domain.encode()) % 10 == 0 else "refuses_unknown"


def before_a_run(url: str) -> float:
    """The seconds ``typogate monitor`` takes to read what a run is compared with: each
    look-alike's latest observation, and the last answer its server gave the probe."""
    store = Store(url, writer=False)
    try:
        started = time.perf_counter()
        store.look_alikes.latest()
        store.look_alikes.last_probes([probe.value for probe in Probe if probe.answered])
        return time.perf_counter() - started
    finally:
        store.close()


def forget(url: str, runs: int, keep_days: int) -> tuple[int, float]:
    """What ``typogate monitor --keep-days`` does after a run, once, after the views were
    timed: the rows forgotten of the runs older than ``keep_days``, and the seconds it took."""
    store = Store(url, writer=False)
    try:
        started = time.perf_counter()
        gone = store.look_alikes.forget(FIRST_NIGHT + timedelta(days=runs - keep_days))
        return gone, time.perf_counter() - started
    finally:
        store.close()


def measure(url: str, protected: int, requests: int) -> dict[str, dict[str, float]]:
    """Start `typogate web` on ``url`` and time each view, signed in (the first of the two
    warming requests reads the snapshots)."""
    with signed_in(url, "monitor-page", timeout=120) as client:
        return {view: timed(client, view, requests, warm=2) for view in views(protected)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protected", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument(
        "--keep-days", type=int, default=7, help="then forget the runs older than this"
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict = {"protected": args.protected, "runs": args.runs, "backends": {}}
    with stores("monitor-page", postgres=not args.no_postgres) as urls:
        for name, url in urls.items():
            seconds = fill(url, args.protected, args.runs)
            views_timed = measure(url, args.protected, args.requests)
            reading = before_a_run(url)
            forgotten, forget_seconds = forget(url, args.runs, args.keep_days)
            report["backends"][name] = {
                "fill_seconds": seconds,
                "views": views_timed,
                "before_a_run_seconds": reading,
                "forgotten_rows": forgotten,
                "forget_seconds": forget_seconds,
            }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    table = Table(
        title=f"Monitor views: {args.protected:,} protected domains x {LOOK_ALIKES} "
        f"look-alikes, {args.runs} runs (target < {TARGET_MS:.0f} ms)"
    )
    table.add_column("view")
    table.add_column("KB", justify="right")
    for name in report["backends"]:
        table.add_column(f"{name} median ms", justify="right")
        table.add_column(f"{name} p95 ms", justify="right")
    worst = 0.0
    for view in views(args.protected):
        cells = []
        for result in report["backends"].values():
            row = result["views"][view]
            if view != EXPORT:
                worst = max(worst, row["p95_ms"])
            cells += [f"{row['median_ms']:.1f}", f"{row['p95_ms']:.1f}"]
        size = next(iter(report["backends"].values()))["views"][view]["kilobytes"]
        table.add_row(view + (" (export)" if view == EXPORT else ""), f"{size:,.0f}", *cells)
    console = Console(width=120)
    console.print(table)
    for name, result in report["backends"].items():
        console.print(
            f"{name}: filled in {result['fill_seconds']:.0f} s through record(); a run "
            f"read what it compares with in {result['before_a_run_seconds']:.2f} s; "
            f"forgetting the runs older than {args.keep_days} days "
            f"({result['forgotten_rows']:,} rows) took {result['forget_seconds']:.2f} s"
        )
    verdict = "[green]met[/]" if worst < TARGET_MS else "[red]missed[/]"
    console.print(f"slowest p95 but the export: {worst:.1f} ms — target {verdict}")


if __name__ == "__main__":
    main()
