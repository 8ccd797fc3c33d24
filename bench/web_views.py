"""What the web benchmarks share: the stores they fill (SQLite, and a throwaway
PostgreSQL when installed), a real `typogate web` on a store with its first admin signed
in, and the time each view takes."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from mta import Server  # noqa: E402
from ports import free_port  # noqa: E402
from postgres import PostgresServer, postgres_binary  # noqa: E402
from web_client import ApiClient, first_admin_password  # noqa: E402

OUT = BENCH / "out"


@contextmanager
def stores(name: str, *, postgres: bool = True) -> Iterator[dict[str, str]]:
    """Store URLs by backend: a new SQLite file ``bench/out/NAME.db``, and a PostgreSQL
    server started for the run (stopped by its PID after) when installed and wanted."""
    OUT.mkdir(exist_ok=True)
    for stale in OUT.glob(f"{name}.db*"):
        stale.unlink()
    urls = {"SQLite": f"sqlite:///{OUT / f'{name}.db'}"}
    server = None
    if postgres and postgres_binary("postgres"):
        server = PostgresServer()
        server.start()
        urls["PostgreSQL"] = server.url
    try:
        yield urls
    finally:
        if server is not None:
            server.remove()


@contextmanager
def signed_in(url: str, name: str, timeout: float) -> Iterator[ApiClient]:
    """`typogate web` on ``url`` (its log in ``bench/out/NAME-web.log``), and a client
    signed in as the first admin it made (each run fills a new store)."""
    port = free_port()
    log = OUT / f"{name}-web.log"
    log.unlink(missing_ok=True)
    server = Server(["web", "--listen", f"127.0.0.1:{port}", "--db", url], port, log).start()
    try:
        yield ApiClient(
            f"http://127.0.0.1:{port}", "admin", first_admin_password(server.log), timeout=timeout
        )
    finally:
        server.stop()


def timed(client: ApiClient, view: str, requests: int, warm: int) -> dict[str, float]:
    """``requests`` sequential requests of ``view`` after ``warm`` unmeasured ones: median,
    95th percentile and slowest, in ms, and the answer's size in kB."""
    for _ in range(warm):  # warm the caches the way a person clicking around does
        size = len(client.get(view).raise_for_status().content)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        size = len(client.get(view).raise_for_status().content)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p95_ms": times[max(0, int(len(times) * 0.95) - 1)],
        "max_ms": times[-1],
        "kilobytes": size / 1000,
    }
