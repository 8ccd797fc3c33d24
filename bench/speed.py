"""In-process speed of the engine: verdicts/s for novel and repeated domains, index build
time and memory, at 1k, 20k and 200k protected+known domains (real lists first, synthetic
pronounceable domains beyond), on one core.

    .venv/bin/python bench/speed.py [--sizes 1000,20000,200000] [--json]

Each size is measured in a fresh process, so build memory is the process's own growth.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenario  # noqa: E402

PROTECTED_SHARE = 0.1  # a tenth protected (two-slip keys), the rest known correspondents
NOVEL = 100_000
REPEATED = 500_000


def _synthetic(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    suffixes = ["com", "net", "org", "de", "co.uk", "gov", "io"]
    out: list[str] = []
    while len(out) < count:
        name = "".join(
            rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(3, 6))
        )
        domain = f"{name}.{rng.choice(suffixes)}"
        if domain not in taken:
            taken.add(domain)
            out.append(domain)
    return out


def domain_set(size: int) -> tuple[list[str], list[str]]:
    rng = random.Random(size)
    real = sorted(
        set(scenario.read_list(scenario.DOMAINS / "mil_domains.txt"))
        | set(scenario.read_list(scenario.DOMAINS / "dotgov_domains.txt"))
        | set(scenario.read_list(scenario.PROVIDERS))
    )
    rng.shuffle(real)
    domains = real[:size]
    domains += _synthetic(rng, size - len(domains), set(domains))
    cut = max(1, int(size * PROTECTED_SHARE))
    return domains[:cut], domains[cut:]


def _measure(size: int, queue: multiprocessing.Queue) -> None:
    from typogate import Config, Guard

    protected, known = domain_set(size)
    config = Config(domains={"protected": protected, "known": known})
    rng = random.Random(1)
    novel = [f"u{i}@{d}" for i, d in enumerate(_synthetic(rng, NOVEL, set(protected + known)))]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    guard = Guard(config)
    build = time.perf_counter() - started
    memory = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    evaluate = guard.evaluate
    started = time.perf_counter()
    for address in novel:
        evaluate(address)
    novel_rate = len(novel) / (time.perf_counter() - started)
    # Repeated: a Zipf-like mix of a thousand domains, different mailboxes each time.
    popular = [address.split("@")[1] for address in novel[:1000]] + protected[:200]
    weights = [1 / (rank + 1) for rank in range(len(popular))]
    repeated = [
        f"user{i % 977}@{d}" for i, d in enumerate(rng.choices(popular, weights, k=REPEATED))
    ]
    for address in repeated[:5000]:
        evaluate(address)
    started = time.perf_counter()
    for address in repeated:
        evaluate(address)
    repeated_rate = len(repeated) / (time.perf_counter() - started)
    queue.put(
        {
            "domains": size,
            "protected": len(protected),
            "known": len(known),
            "build_seconds": build,
            "build_mb": memory,
            "novel_per_second": novel_rate,
            "repeated_per_second": repeated_rate,
        }
    )


def measure(size: int) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    worker = multiprocessing.Process(target=_measure, args=(size, queue))
    worker.start()
    result = queue.get(timeout=900)
    worker.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,20000,200000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [measure(int(size)) for size in args.sizes.split(",")]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="typogate engine, in-process, one core")
    for column in (
        "domains",
        "protected",
        "build s",
        "build MB",
        "novel verdicts/s",
        "repeated verdicts/s",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            f"{row['domains']:,}",
            f"{row['protected']:,}",
            f"{row['build_seconds']:.2f}",
            f"{row['build_mb']:.0f}",
            f"{row['novel_per_second']:,.0f}",
            f"{row['repeated_per_second']:,.0f}",
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
