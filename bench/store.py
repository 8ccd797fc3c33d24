"""What the store costs the policy service: requests/s with the store off, on SQLite and on
PostgreSQL, side by side in one run (load from a separate process, 16 connections).

    .venv/bin/python bench/store.py [--seconds 5] [--rounds 3] [--json]

The variants take turns (off, SQLite, PostgreSQL, off, ...) for --rounds rounds and each
reports its median, so a noisy minute on this shared 2-core machine does not land on one
variant only. The server is set up as `typogate policy --db` sets itself up (Runtime.settle).
PostgreSQL is a throwaway server this bench starts on a loopback port (Debian's postgresql,
installed by make test) and stops by its PID. Target: the store costs at most 20%.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import signal
import statistics
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
import scenario  # noqa: E402
from gateway import measure  # noqa: E402
from ports import free_port, wait_for_port  # noqa: E402
from postgres import PostgresServer, postgres_binary  # noqa: E402

CONNECTIONS = 16


def _serve(port: int, protected: Path, known: Path, url: str | None) -> None:
    from typogate.gateway.gatekeeper import Gatekeeper
    from typogate.gateway.policy_service import PolicyService
    from typogate.policy import Config, Guard
    from typogate.store import Store
    from typogate.vocabulary import Adapter

    store = Store(url) if url else None
    guard = Guard(Config().with_lists([protected], [known]))
    service = PolicyService(Gatekeeper(guard, Adapter.POLICY, journal=store))
    gc.collect()  # as Runtime.settle does before serving
    gc.freeze()

    async def run() -> None:
        server = await service.start("127.0.0.1", port)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(run())
    # Stopped as typogate policy stops: the writer finishes its work here, not during the
    # next variant's measurement.
    if store is not None:
        store.close()


def run_with(url: str | None, seconds: float, protected: Path, known: Path) -> dict:
    port = free_port()
    server = multiprocessing.Process(target=_serve, args=(port, protected, known, url))
    server.start()
    try:
        wait_for_port(port, timeout=60)
        return measure(port, CONNECTIONS, seconds)
    finally:
        server.terminate()
        server.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = BENCH / "out" / "store"
    work.mkdir(parents=True, exist_ok=True)
    sc = scenario.gov_mil_scenario(per_class=50)
    protected, known = work / "protected.txt", work / "known.txt"
    protected.write_text("\n".join(sc.protected) + "\n")
    known.write_text("\n".join(sc.known) + "\n")
    sqlite_file = work / "bench.db"
    sqlite_file.unlink(missing_ok=True)
    variants: dict[str, str | None] = {
        "store off": None,
        "SQLite (WAL)": f"sqlite:///{sqlite_file}",
    }
    postgres = None
    if postgres_binary("postgres"):
        postgres = PostgresServer()
        postgres.start()
        variants["PostgreSQL"] = postgres.url
    runs: dict[str, list[dict]] = {label: [] for label in variants}
    try:
        for _ in range(args.rounds):
            for label, url in variants.items():
                runs[label].append(run_with(url, args.seconds, protected, known))
    finally:
        if postgres is not None:
            postgres.remove()
    results = {
        label: {
            key: statistics.median(run[key] for run in rounds)
            for key in ("per_second", "p50_ms", "p99_ms")
        }
        | {"rounds": [run["per_second"] for run in rounds]}
        for label, rounds in runs.items()
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    table = Table(title=f"Policy service with and without the store ({CONNECTIONS} connections)")
    for column in ("store", "median req/s", "vs off", "p50 ms", "p99 ms", "each round"):
        table.add_column(column, justify="left" if column == "store" else "right")
    base = results["store off"]["per_second"]
    for label, row in results.items():
        table.add_row(
            label,
            f"{row['per_second']:,.0f}",
            f"{row['per_second'] / base:.0%}",
            f"{row['p50_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            " ".join(f"{r:,.0f}" for r in row["rounds"]),
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
