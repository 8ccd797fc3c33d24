"""Sink throughput: RCPT refusals per second and latency, typogate's sink beside Postfix.

    .venv/bin/python bench/sink.py [--seconds 5] [--json]

A load generator in a separate process keeps 1, 16 and 64 SMTP sessions open and, in each,
sends MAIL FROM, RCPT TO (timed: the refusal) and RSET, one command at a time as an MTA
does, for a bounded time, over the same mix of recipients at ``.ml`` look-alikes of the
built-in ``.mil`` domains and of names nobody meant. Side by side in the same run:

- typogate's sink (``typogate sink run``, the built-in profile, the SQLite store recording
  every refusal): 550 5.1.2 with the address the sender meant, or 550 5.1.1;
- Postfix alone refusing the same recipients from a static access map
  (``check_recipient_access``), Postfix's many smtpd processes in C: the ceiling for an MTA
  that gives no hint;
- plain aiosmtpd refusing every RCPT with a fixed line, no judging, no recording: the SMTP
  library the sink is built on as it comes (the sink reads plain addresses by a faster path
  than aiosmtpd's email-package parser), to tell the sink's own cost from the library's.

Target: the sink at 16 senders at least 50% of Postfix's rate, p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import shutil
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from mta import TYPOGATE, Postfix, postfix_root  # noqa: E402
from ports import free_port, stop_servers_on_sigterm, wait_for_port  # noqa: E402

SENDERS = (1, 16, 64)
PEERS = ("typogate sink", "Postfix access map", "plain aiosmtpd")


def recipients() -> list[str]:
    """Look-alikes of every built-in .mil domain (army.ml for army.mil), a few of each as
    subdomains, and as many .ml names that are a typo of nothing: 20,000 recipients."""
    text = resources.files("typogate.policy").joinpath("profiles/us-mil.txt").read_text()
    mil = [line.split("#")[0].strip() for line in text.splitlines()]
    lookalikes = [d.removesuffix(".mil") + ".ml" for d in mil if d.endswith(".mil")]
    rng = random.Random(17)
    nothing = ["".join(rng.choices("qwxzkvjy", k=7)) + ".ml" for _ in range(len(lookalikes))]
    domains = lookalikes + nothing
    return [f"user{rng.randrange(5000)}@{rng.choice(domains)}" for _ in range(20_000)]


# --- load ------------------------------------------------------------------------------------


async def _session(
    port: int, rcpts: list[str], deadline: float, latencies: list[float], replies: dict
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> str:
        line = await reader.readline()
        while line[3:4] == b"-":  # a multi-line reply
            line = await reader.readline()
        return line.decode(errors="replace")

    async def say(command: str) -> str:
        writer.write(command.encode() + b"\r\n")
        return await reply()

    await reply()  # greeting
    assert (await say("EHLO load.example.net")).startswith("250")
    done = 0
    index = 0
    while time.perf_counter() < deadline:
        assert (await say("MAIL FROM:<alice@sender.example>")).startswith("250")
        started = time.perf_counter()
        answer = await say(f"RCPT TO:<{rcpts[index]}>")
        latencies.append(time.perf_counter() - started)
        replies.setdefault(answer[:9], answer.strip())
        assert answer.startswith("5"), answer
        assert (await say("RSET")).startswith("250")
        done += 1
        index = (index + 1) % len(rcpts)
    writer.write(b"QUIT\r\n")
    writer.close()
    return done


def _load(port: int, senders: int, seconds: float, queue: multiprocessing.Queue) -> None:
    rcpts = recipients()

    async def run() -> tuple[int, list[float], dict]:
        latencies: list[float] = []
        replies: dict = {}
        deadline = time.perf_counter() + seconds
        counts = await asyncio.gather(
            *(
                _session(port, rcpts[i::senders], deadline, latencies, replies)
                for i in range(senders)
            )
        )
        return sum(counts), latencies, replies

    started = time.perf_counter()
    total, latencies, replies = asyncio.run(run())
    elapsed = time.perf_counter() - started
    latencies.sort()
    queue.put(
        {
            "refusals": total,
            "per_second": total / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "replies": sorted(replies.values())[:3],
        }
    )


def measure(port: int, senders: int, seconds: float) -> dict:
    """Run the load generator in its own process and collect its figures."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    worker = multiprocessing.Process(target=_load, args=(port, senders, seconds, queue))
    worker.start()
    result = queue.get(timeout=seconds + 120)
    worker.join()
    return result


# --- the servers -----------------------------------------------------------------------------


def _plain(port: int) -> None:
    """aiosmtpd refusing every recipient with one fixed line: no judging, no recording."""
    from aiosmtpd.smtp import SMTP

    class Refuse:
        async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
            return "550 5.1.1 no such mailbox"

    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Refuse()), "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


def _sink(work: Path, port: int) -> subprocess.Popen[bytes]:
    config = work / "typogate.toml"
    # Every sender of the load comes from 127.0.0.1: one client address, so its share of
    # sessions is lifted, as Postfix exempts $mynetworks from its per-client limits; so are
    # the hourly record budgets, so that every answer is recorded, as under real traffic.
    config.write_text(
        '[sink]\nhostname = "sink.bench.example"\n[[sink.serve]]\nsuffix = "ml"\n'
        f"[limits]\nsink_connections_per_client = {max(SENDERS)}\n"
        "sink_records_per_hour = 1000000000\nsink_records_per_client_hour = 1000000000\n"
    )
    (work / "sink.db").unlink(missing_ok=True)
    return subprocess.Popen(
        [TYPOGATE, "sink", "run", "--listen", f"127.0.0.1:{port}", "--config", str(config)]
        + ["--db", f"sqlite:///{work / 'sink.db'}"],
        stdout=subprocess.DEVNULL,
        stderr=(work / "sink.log").open("wb"),
    )


def _postfix(work: Path) -> Postfix:
    domains = sorted({r.rpartition("@")[2] for r in recipients()})
    access = postfix_root() / "access"
    access.write_text("".join(f"{d} 550 5.1.1 no such mailbox\n" for d in domains))
    return Postfix(
        postfix_root(),
        free_port(),
        free_port(),  # nothing is relayed
        {
            "smtpd_recipient_restrictions": f"check_recipient_access texthash:{access}",
            "default_process_limit": "100",
            # Postfix slows down and drops clients that make many errors, and counts RSET as
            # a junk command: off, so that it is measured at its fastest.
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "1000000",
            "smtpd_hard_error_limit": "1000000",
            "smtpd_junk_command_limit": "1000000",
            "smtpd_client_connection_count_limit": "0",
            # Postfix's default (the test instance opens a queue file at MAIL FROM).
            "smtpd_delay_open_until_valid_rcpt": "yes",
        },
    )


def run_all(seconds: float, work: Path) -> dict:
    """All three servers up at once (idle ones cost nothing), measured in turns for each
    number of senders, so that a change in the machine's load hits all three alike."""
    results: dict = {peer: {} for peer in PEERS}
    sink_port, plain_port = free_port(), free_port()
    sink = _sink(work, sink_port)
    plain = multiprocessing.Process(target=_plain, args=(plain_port,))
    plain.start()
    postfix = _postfix(work)
    try:
        postfix.start()
        wait_for_port(sink_port, timeout=60)
        wait_for_port(plain_port)
        ports = dict(zip(PEERS, (sink_port, postfix.smtpd_port, plain_port), strict=True))
        for port in ports.values():
            measure(port, 16, 1.0)  # warm up: verdict cache, smtpd processes, first batch
        for n in SENDERS:
            for peer, port in ports.items():
                results[peer][n] = measure(port, n, seconds)
    finally:
        postfix.remove()
        plain.terminate()
        plain.join()
        sink.terminate()
        sink.wait()
    stored = subprocess.run(
        [sys.executable, "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1])"
         ".execute('select count(*) from sink_records').fetchone()[0])", str(work / "sink.db")],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    results["recorded"] = int(stored)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if shutil.which("postfix") is None:
        sys.exit("bench/sink.py needs Postfix (make setup installs it)")
    console = Console(stderr=args.json, width=120)
    work = BENCH / "out" / "sink"
    work.mkdir(parents=True, exist_ok=True)
    console.print("[dim]RCPT refusals under load…[/]")
    results = run_all(args.seconds, work)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    table = Table(
        title="RCPT refusals over loopback (MAIL, RCPT, RSET per refusal; load from a "
        "separate process)"
    )
    for column in ("senders", *(f"{p} /s" for p in PEERS), "sink / Postfix"):
        table.add_column(column, justify="right")
    for column in (f"{p} p50 | p99 ms" for p in PEERS):
        table.add_column(column, justify="right")
    for n in SENDERS:
        rows = [results[p][n] for p in PEERS]
        table.add_row(
            str(n),
            *(f"{r['per_second']:,.0f}" for r in rows),
            f"{rows[0]['per_second'] / rows[1]['per_second']:.0%}",
            *(f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f}" for r in rows),
        )
    console.print(table)
    console.print(f"records the sink wrote to its store during the run: {results['recorded']:,}")
    for peer in PEERS:
        console.print(f"[dim]{peer} answered e.g.: {results[peer][16]['replies'][0]}[/]")


if __name__ == "__main__":
    stop_servers_on_sigterm()
    main()
