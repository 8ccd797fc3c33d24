"""Audit throughput: lines/s of `typogate audit` on a generated Postfix log, local engine and
Dask with 1 and 2 workers, side by side with `grep -c 'status=sent'` on the same file.

    .venv/bin/python bench/audit.py [--messages 1000000] [--json]

The generator writes a realistic log: syslog time stamps over a year, smtpd/cleanup/qmgr/
smtp/removed lines per message, Zipf-distributed recipient domains, ~0.1% typo domains, a
few bounced and deferred deliveries. It records what it wrote, and the bench checks the
audit's counts against it: lines, messages, statuses, and a finding for each delivery to a
typo domain that `typogate check` flags (the engine's misses, its recall, are shown beside:
bench/quality.py measures them). Peak memory of each run is reported (it should not grow
with N).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import scenario  # noqa: E402

TYPOGATE = str(Path(sys.executable).with_name("typogate"))
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def generate(path: Path, messages: int, seed: int = 11) -> dict:
    """Write the log; return the truth: lines, messages, deliveries by status, typo deliveries."""
    rng = random.Random(seed)
    real = scenario.read_list(scenario.DOMAINS / "dotgov_federal_domains.txt")
    real += scenario.read_list(scenario.DOMAINS / "mil_domains.txt")
    real += scenario.read_list(scenario.PROVIDERS)
    rng.shuffle(real)
    weights = [1 / (rank + 1) for rank in range(len(real))]
    typos = [
        t
        for t in scenario.gov_mil_scenario(per_class=20).typos
        if not t.ambiguous and "." in t.domain and t.domain.isascii()
    ]
    truth = {
        "lines": 0,
        "messages": messages,
        "sent": 0,
        "bounced": 0,
        "deferred": 0,
        "typo_deliveries": 0,
        "typo_deliveries_by_domain": {},
    }
    by_domain = truth["typo_deliveries_by_domain"]
    pid = 1000
    with open(path, "w", encoding="ascii", errors="replace") as out:
        write = out.write
        for number in range(messages):
            qid = f"{number:011X}"
            month = MONTHS[number * 12 // messages]
            clock = f"{number // 3600 % 24:02d}:{number // 60 % 60:02d}:{number % 60:02d}"
            stamp = f"{month} {1 + number % 28:2d} {clock}"
            sender = f"user{rng.randrange(5000)}@example.org"
            recipients = []
            for _ in range(1 if rng.random() < 0.8 else rng.randint(2, 4)):
                if rng.random() < 0.001:
                    domain = rng.choice(typos).domain
                    truth["typo_deliveries"] += 1
                    by_domain[domain] = by_domain.get(domain, 0) + 1
                else:
                    domain = rng.choices(real, weights)[0]
                recipients.append(f"p{rng.randrange(100000)}@{domain}")
            lines = [
                f"{stamp} mx1 postfix/smtpd[{pid}]: {qid}: client=ws{rng.randrange(200)}"
                f".example.org[192.0.2.{rng.randrange(255)}]",
                f"{stamp} mx1 postfix/cleanup[{pid + 1}]: {qid}: message-id=<{qid}@example.org>",
                f"{stamp} mx1 postfix/qmgr[90]: {qid}: from=<{sender}>, "
                f"size={rng.randrange(1000, 90000)}, nrcpt={len(recipients)} (queue active)",
            ]
            for recipient in recipients:
                roll = rng.random()
                status = "sent" if roll < 0.97 else ("bounced" if roll < 0.985 else "deferred")
                truth[status] += 1
                dsn = {"sent": "2.0.0", "bounced": "5.1.1", "deferred": "4.4.1"}[status]
                lines.append(
                    f"{stamp} mx1 postfix/smtp[{pid + 2}]: {qid}: to=<{recipient}>, "
                    f"relay=mx.example.net[198.51.100.{rng.randrange(255)}]:25, delay=0.5, "
                    f"delays=0.1/0/0.2/0.2, dsn={dsn}, status={status} (250 2.0.0 Ok: queued)"
                )
            lines.append(f"{stamp} mx1 postfix/qmgr[90]: {qid}: removed")
            truth["lines"] += len(lines)
            write("\n".join(lines) + "\n")
            pid = 1000 + (pid + 3) % 30000
    return truth


def _flagged(domains: list[str], protected: Path) -> set[str]:
    """Which of ``domains`` typogate flags with the same protected lists (one ``check``)."""
    done = subprocess.run(
        [TYPOGATE, "check", "--json", "--protect", str(protected)],
        input="".join(f"{domain}\n" for domain in domains),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return {d for d, row in zip(domains, rows, strict=True) if row["action"] != "allow"}


def timed(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=args.json, width=120)
    work = BENCH / "out" / "audit"
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"mail-{args.messages}.log"
    truth_file = log.with_suffix(".truth.json")
    truth = json.loads(truth_file.read_text()) if truth_file.exists() else {}
    if not log.exists() or "typo_deliveries_by_domain" not in truth:
        console.print(f"[dim]writing a Postfix log of {args.messages:,} messages…[/]")
        truth = generate(log, args.messages)
        truth_file.write_text(json.dumps(truth))
    rows = []
    # The protected lists the generator drew from: typos among them are what the audit finds.
    protected = work / "protected.txt"
    protected.write_text("\n".join(scenario.gov_mil_scenario(per_class=1).protected) + "\n")
    # The audit counts right when it finds each delivery to a domain the engine flags; the
    # engine's misses (its recall, bench/quality.py) are shown beside, not taken for a
    # counting error.
    flagged = _flagged(list(truth["typo_deliveries_by_domain"]), protected)
    expected = sum(n for d, n in truth["typo_deliveries_by_domain"].items() if d in flagged)
    seconds, _, done = timed(["grep", "-c", "status=sent", str(log)])
    rows.append(
        {
            "run": "grep -c 'status=sent' (I/O ceiling)",
            "seconds": seconds,
            "lines_per_second": truth["lines"] / seconds,
            "peak_mb": None,
            "correct": int(done.stdout) == truth["sent"],
        }
    )
    for label, extra in (
        ("typogate audit, local engine", ["--engine", "local"]),
        ("typogate audit, Dask 1 worker", ["--engine", "dask", "--workers", "1"]),
        ("typogate audit, Dask 2 workers", ["--engine", "dask", "--workers", "2"]),
    ):
        out = work / label.split(", ")[1].replace(" ", "-")
        seconds, peak, done = timed(
            [
                TYPOGATE,
                "audit",
                str(log),
                "--format",
                "postfix",
                "--protect",
                str(protected),
                "--out",
                str(out),
                "--json",
                *extra,
            ]
        )
        if done.returncode != 0:
            console.print(f"[red]{label} failed[/]: {done.stderr[-2000:]}")
            continue
        summary = json.loads(done.stdout)
        status = summary["deliveries_by_status"]
        correct = (
            summary["lines"] == truth["lines"]
            and summary["messages"] == truth["messages"]
            and all(status.get(s, 0) == truth[s] for s in ("sent", "bounced", "deferred"))
            and summary["findings"] == expected
        )
        rows.append(
            {
                "run": label,
                "seconds": seconds,
                "lines_per_second": truth["lines"] / seconds,
                "peak_mb": peak,
                "correct": correct,
                "findings": summary["findings"],
            }
        )
    if args.json:
        print(json.dumps({"truth": truth, "expected_findings": expected, "runs": rows}, indent=2))
        return
    table = Table(
        title=f"Audit of a Postfix log: {truth['lines']:,} lines, {truth['messages']:,} "
        f"messages, {truth['typo_deliveries']:,} deliveries to typo domains "
        f"({expected:,} to domains typogate flags)"
    )
    columns = ("run", "seconds", "lines/s", "vs grep", "peak MB", "typo deliveries found")
    for column in (*columns, "counts correct"):
        table.add_column(column, justify="left" if column == "run" else "right")
    ceiling = rows[0]["lines_per_second"]
    typo_deliveries = truth["typo_deliveries"]
    for row in rows:
        table.add_row(
            row["run"],
            f"{row['seconds']:.2f}",
            f"{row['lines_per_second']:,.0f}",
            f"{row['lines_per_second'] / ceiling:.0%}",
            "—" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}",
            f"{row['findings']:,} of {typo_deliveries:,}" if "findings" in row else "—",
            "yes" if row["correct"] else "[red]NO[/]",
        )
    console.print(table)


if __name__ == "__main__":
    main()
