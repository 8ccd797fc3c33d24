"""Look-alike monitoring: `typogate monitor` side by side with `dnstwist --registered`, both
asking the same local DNS server (NSD) in one run.

    .venv/bin/python bench/monitor.py [--protected 60] [--cores N] [--workers N] [--json]

The zone plants, for each protected domain, the look-alikes a squatter registers, made by
the bench's own rules (not typogate's model): the suffix swaps people type (``army.ml``
for ``army.mil``, ``gmail.co``/``.cm``/``.om`` for ``.com``), a letter left out, two
swapped, a neighbouring key, a doubled letter, ASCII look-alikes (``rn`` for ``m``, ``0``
for ``o``, ``1`` for ``l``), one Cyrillic letter, a hyphen, a dropped dot, and the domain
typed as a name (``armymil.com``), in every mail state. Beside them, as background, it
registers each protected domain's bit-flip twins (``arly.mil``): names dnstwist's
bitsquatting reports, but not slips a sender types. Every other name is NXDOMAIN.

Measured per tool: the share of the planted look-alikes found (and of the suffix swaps),
the share of its first 20 reported domains that are planted (typogate by probability;
dnstwist has no ranking, so its lists are taken in turn, one domain from each protected
domain's list), and the domains asked in DNS per second: of the whole run (start-up and
making the look-alikes included), and of the DNS step alone (dnstwist: its runs less the
same runs without DNS, ``--format list``; typogate: its ``mail_states`` over the names its
run asked). dnstwist runs as one process per protected domain (as it is used), with its
default threads, as many at a time as the machine has cores (--cores); typogate as one
process for the whole list (--workers 1, its default), so dnstwist gets the more cores.
dnstwist takes no port for its nameserver, so NSD listens on 127.0.0.1:53.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))
from dns_server import DnsServer  # noqa: E402

from typogate.domains import parse_domain  # noqa: E402
from typogate.monitor import Lookup, Nameserver, mail_states  # noqa: E402

TYPOGATE = str(Path(sys.executable).with_name("typogate"))
DNSTWIST = BENCH / ".peers" / "venv" / "bin" / "dnstwist"

# Organisations' mail domains: .mil and .gov (a closed registry: slips land elsewhere) and
# the big providers. The list repeats with numbered twins past its end (--protected).
PROTECTED = [
    "army.mil", "navy.mil", "marines.mil", "uscg.mil", "us.af.mil", "spaceforce.mil",
    "health.mil", "state.gov", "treasury.gov", "justice.gov", "nasa.gov", "gmail.com",
    "outlook.com", "yahoo.com", "hotmail.com", "icloud.com", "proton.me", "gmx.com",
    "aol.com", "comcast.net",
]  # fmt: skip
SUFFIX_SWAPS = {"mil": ["ml"], "com": ["co", "cm", "om"], "net": ["ne"], "me": ["mr"]}
# The key to the right on a QWERTY row (to the left at the row's end): a fat finger.
NEIGHBOUR = {
    row[at]: row[at + 1] if at + 1 < len(row) else row[at - 1]
    for row in ("qwertyuiop", "asdfghjkl", "zxcvbnm")
    for at in range(len(row))
}
CYRILLIC = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у"}
STATES = [
    "@ MX 10 mx.{d}.\nmx A 192.0.2.1\n",
    "@ A 192.0.2.2\n",
    "@ MX 0 .\n",
    "",
    '@ MX 10 mail.{d}.\nmail A 192.0.2.3\n@ TXT "v=spf1 mx -all"\n_dmarc TXT "v=DMARC1; p=none"\n',
]


def split(domain: str) -> tuple[str, str]:
    name, _, suffix = domain.rpartition(".")
    return name, suffix


def squats(domain: str) -> dict[str, str]:
    """The planted look-alikes of ``domain`` and the kind of each."""
    name, suffix = split(domain)
    label = name.rpartition(".")[2]
    head = name[: len(name) - len(label)]
    found: dict[str, str] = {}

    def add(kind: str, new_label: str, new_suffix: str = suffix) -> None:
        if new_label and new_label != label:
            found.setdefault(f"{head}{new_label}.{new_suffix}", kind)

    for swap in SUFFIX_SWAPS.get(suffix, []):
        found[f"{name}.{swap}"] = "suffix swap"
    add("omission", label[:1] + label[2:])
    if len(label) > 2 and label[1] != label[2]:
        add("transposition", label[0] + label[2] + label[1] + label[3:])
    add("keyboard", label[:-1] + NEIGHBOUR.get(label[-1], label[-1]))
    add("doubling", label[:2] + label[2:3] + label[2:])
    for letter, twin in (("m", "rn"), ("o", "0"), ("l", "1")):
        if letter in label:
            add("homoglyph", label.replace(letter, twin, 1))
            break
    for at, letter in enumerate(label):
        if letter in CYRILLIC:
            add("cyrillic", label[:at] + CYRILLIC[letter] + label[at + 1 :])
            break
    if len(label) >= 4:
        add("hyphen", label[:2] + "-" + label[2:])
    if head:
        found.setdefault(f"{name.replace('.', '')}.{suffix}", "dropped dot")
    found.setdefault(f"{name.replace('.', '')}{suffix}.com", "merged suffix")
    return found


def bitflips(domain: str, count: int = 2) -> list[str]:
    """Registered background: one bit flipped in a letter of the name (dnstwist finds them)."""
    name, suffix = split(domain)
    label = name.rpartition(".")[2]
    head = name[: len(name) - len(label)]
    twins = []
    for at, letter in enumerate(label):
        for bit in range(7):
            flipped = chr(ord(letter) ^ (1 << bit))
            if flipped.isalnum() and flipped.isascii() and flipped.islower() and flipped != letter:
                twins.append(f"{head}{label[:at]}{flipped}{label[at + 1 :]}.{suffix}")
                break
        if len(twins) == count:
            break
    return twins


def protected_list(count: int) -> list[str]:
    domains = PROTECTED[:count]
    for number in range(count - len(domains)):
        name, suffix = split(PROTECTED[number % len(PROTECTED)])
        domains.append(f"{name}{number // len(PROTECTED) + 2}.{suffix}")
    return domains


def ascii_form(domain: str) -> str:
    return domain.encode("idna").decode("ascii")


def unicode_form(domain: str) -> str:
    return domain.encode("ascii").decode("idna") if "xn--" in domain else domain


@dataclass(frozen=True)
class Took:
    """Wall-clock and CPU seconds (user and system, of the tool's own processes)."""

    wall: float
    cpu: float

    def __sub__(self, other: Took) -> Took:
        return Took(self.wall - other.wall, self.cpu - other.cpu)


@contextmanager
def timed(children: bool = True) -> Iterator[list[Took]]:
    """Time the block: CPU of the child processes it waits for (or of this process)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    before, started, took = resource.getrusage(who), time.perf_counter(), []
    yield took
    after = resource.getrusage(who)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    took.append(Took(time.perf_counter() - started, cpu))


def run_typogate(protected: Path, store: Path, workers: int) -> tuple[Took, list[dict]]:
    with timed() as took:
        done = subprocess.run(
            [TYPOGATE, "monitor", "--protect", str(protected), "--nameserver", "127.0.0.1",
             "--db", f"sqlite:///{store}", "--json", "--all", "--workers", str(workers)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    return took[0], [json.loads(line) for line in done.stdout.splitlines()]


def run_dnstwist(domains: list[str], cores: int) -> tuple[Took, Took, int, list[list[str]]]:
    """Whole runs of ``dnstwist --registered``, one per domain, ``cores`` at a time: what
    they took, what the same runs without DNS took (``--format list``: start-up and
    permutations), the names asked (the permutations) and each run's reported domains."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def permutations(domain: str) -> int:
        listed = subprocess.run(
            [str(DNSTWIST), "--format", "list", domain], capture_output=True, text=True, env=env
        )
        return len(listed.stdout.split()) - 1  # the original is listed too

    def registered(domain: str) -> list[str]:
        done = subprocess.run(
            [str(DNSTWIST), "--registered", "--nameservers", "127.0.0.1", "--format", "json",
             domain],
            capture_output=True, text=True, check=True, env=env,
        )  # fmt: skip
        found = [item["domain"] for item in json.loads(done.stdout or "[]")]
        return [unicode_form(d) for d in found if d != domain]

    with timed() as listing, ThreadPoolExecutor(max_workers=cores) as pool:
        asked = sum(pool.map(permutations, domains))
    with timed() as took, ThreadPoolExecutor(max_workers=cores) as pool:
        reported = list(pool.map(registered, domains))
    return took[0], listing[0], asked, reported


def typogate_dns_step(lines: list[dict]) -> Took:
    """What typogate's DNS step (``mail_states``) takes over the names its run asked."""
    names = [parse_domain(line["domain"]).ascii for line in lines]
    lookup = Lookup((Nameserver("127.0.0.1", 53),))
    with timed(children=False) as took:
        asyncio.run(mail_states(names, lookup))
    return took[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protected", type=int, default=60, help="protected domains")
    parser.add_argument(
        "--cores",
        type=int,
        default=os.cpu_count() or 1,
        help="dnstwist processes at a time (default: this machine's cores)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="typogate's --workers (default 1: one process)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    console = Console(stderr=args.json, width=110)
    console.print("[dim]installing peers from their registries (bench/peers/setup.sh)…[/]")
    subprocess.run(["bash", str(BENCH / "peers" / "setup.sh")], check=True)

    domains = protected_list(args.protected)
    planted: dict[str, tuple[str, str]] = {}  # look-alike -> (intended, kind)
    for domain in domains:
        for squat, kind in squats(domain).items():
            if squat not in domains:
                planted.setdefault(squat, (domain, kind))
    background = {twin for d in domains for twin in bitflips(d)} - set(planted) - set(domains)
    zones = {}
    for number, squat in enumerate(sorted(planted)):
        zones[ascii_form(squat)] = STATES[number % len(STATES)].format(d=ascii_form(squat))
    for twin in background:
        zones[twin] = STATES[0].format(d=twin)
    swaps = {d for d, (_, kind) in planted.items() if kind == "suffix swap"}

    with tempfile.TemporaryDirectory(prefix="typogate-bench-monitor-") as folder:
        protected = Path(folder) / "protected.txt"
        protected.write_text("\n".join(domains) + "\n")
        try:
            server = DnsServer(zones, port=53)
            server.start()
        except (RuntimeError, TimeoutError) as error:
            console.print(f"[bold red]cannot serve the zone on 127.0.0.1:53[/]: {error}")
            raise SystemExit(1) from None
        try:
            whole, lines = run_typogate(protected, Path(folder) / "store.db", args.workers)
            dns_step = typogate_dns_step(lines)
            dt_whole, dt_listing, dt_asked, dt_lists = run_dnstwist(domains, args.cores)
        finally:
            server.close()

    registered = [line for line in lines if line["state"] != "nxdomain"]
    registered.sort(key=lambda line: -line["probability"])
    typogate_found = {line["domain"] for line in registered}
    dnstwist_order = [d for turn in zip_longest(*dt_lists) for d in turn if d is not None]
    dnstwist_found = set(dnstwist_order)
    results = {}
    typogate_order = [line["domain"] for line in registered]
    for tool, found, order, asked, took, dns in (
        ("typogate", typogate_found, typogate_order, len(lines), whole, dns_step),
        ("dnstwist --registered", dnstwist_found, dnstwist_order, dt_asked, dt_whole,
         dt_whole - dt_listing),
    ):  # fmt: skip
        top = order[:20]
        results[tool] = {
            "planted_found": len(found & set(planted)) / len(planted),
            "suffix_swaps_found": len(found & swaps) / len(swaps),
            "top20_planted": sum(d in planted for d in top) / max(1, len(top)),
            "background_reported": len(found & background),
            "asked": asked,
            "seconds": round(took.wall, 2),
            "asked_per_second": round(asked / took.wall),
            "cpu_seconds": round(took.cpu, 2),
            "asked_per_cpu_second": round(asked / took.cpu),
            "dns_seconds": round(dns.wall, 2),
            "dns_asked_per_second": round(asked / dns.wall),
            "dns_cpu_seconds": round(dns.cpu, 2),
            "dns_asked_per_cpu_second": round(asked / dns.cpu),
        }
    missed = sorted((dnstwist_found & set(planted)) - typogate_found)

    def ratio(key: str) -> float:
        return round(results["typogate"][key] / results["dnstwist --registered"][key], 1)

    results["checks"] = {
        "planted": len(planted),
        "suffix_swaps": len(swaps),
        "background": len(background),
        "planted_dnstwist_finds_typogate_misses": missed,
        "suffix_swaps_dnstwist_misses_typogate_finds": sorted(
            (swaps - dnstwist_found) & typogate_found
        ),
        "typogate_missed_planted": sorted(set(planted) - typogate_found),
        "speed_ratio": ratio("asked_per_second"),
        "dns_speed_ratio": ratio("dns_asked_per_second"),
        "cpu_ratio": ratio("asked_per_cpu_second"),
        "dns_cpu_ratio": ratio("dns_asked_per_cpu_second"),
        "whole_run_time_ratio": round(
            results["dnstwist --registered"]["seconds"] / results["typogate"]["seconds"], 1
        ),
    }
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    table = Table(
        title=f"look-alike monitoring: {len(domains)} protected domains, {len(planted)} planted "
        f"look-alikes ({len(swaps)} suffix swaps), {len(background)} bit-flip twins as background"
    )
    for column in ("tool", "planted found", "suffix swaps", "top 20 planted", "asked"):
        table.add_column(column, justify="left" if column == "tool" else "right")
    for tool in ("typogate", "dnstwist --registered"):
        row = results[tool]
        table.add_row(
            tool,
            f"{row['planted_found']:.0%}",
            f"{row['suffix_swaps_found']:.0%}",
            f"{row['top20_planted']:.0%}",
            f"{row['asked']:,}",
        )
    speed = Table(title="domains asked per second (wall clock) and per CPU second")
    for column in ("tool", "whole run s", "asked/s", "asked/CPU-s", "DNS step s", "asked/s",
                   "asked/CPU-s"):  # fmt: skip
        speed.add_column(column, justify="left" if column == "tool" else "right")
    for tool in ("typogate", "dnstwist --registered"):
        row = results[tool]
        speed.add_row(
            tool,
            f"{row['seconds']:.1f}",
            f"{row['asked_per_second']:,}",
            f"{row['asked_per_cpu_second']:,}",
            f"{row['dns_seconds']:.1f}",
            f"{row['dns_asked_per_second']:,}",
            f"{row['dns_asked_per_cpu_second']:,}",
        )
    speed.add_row(
        "typogate ÷ dnstwist",
        "",
        f"{results['checks']['speed_ratio']}x",
        f"{results['checks']['cpu_ratio']}x",
        "",
        f"{results['checks']['dns_speed_ratio']}x",
        f"{results['checks']['dns_cpu_ratio']}x",
    )
    console.print(table)
    console.print(speed)
    checks = results["checks"]
    console.print(
        f"typogate's whole run took {checks['whole_run_time_ratio']}x less time "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    console.print(f"planted that dnstwist finds and typogate misses: {missed or 'none'}")
    console.print(
        "suffix swaps dnstwist misses and typogate finds: "
        f"{len(checks['suffix_swaps_dnstwist_misses_typogate_finds'])} of {len(swaps)}"
    )
    if checks["typogate_missed_planted"]:
        console.print(f"planted typogate misses: {checks['typogate_missed_planted']}")


if __name__ == "__main__":
    main()
