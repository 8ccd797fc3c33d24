"""In-process speed of the engine: verdicts/s for novel and repeated domains (and novel
IDNs in Cyrillic letters that pass for Latin ones, a hostile sender's novel names of
many labels or of words joined by hyphens, and everyday names with a host in front and a
hyphen), index build
time and memory, at 1k, 20k and 200k protected+known domains (real lists first, synthetic
pronounceable domains beyond), on one core.

    .venv/bin/python bench/speed.py [--sizes 1000,20000,200000] [--json]

Each size is measured in a fresh process, so build memory is the process's own growth.
Side by side in that process, the same kinds of mail judged for a sender (as the gateways
judge it): 300 senders of example.org, each with correspondents of its own learned, as
`typogate learn` stores them, so that every verdict also weighs the sender's relationships
(its near-twins among its own correspondents, a first send against what it wrote to).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenario  # noqa: E402

# Novel names written in Cyrillic letters that pass for Latin ones (аррӏе.co-like): each is
# an IDN to read and check, and is read again in Latin letters (docs/operations.md). Once
# in Unicode (SMTPUTF8 mail), and other names as A-labels, as Postfix hands on the rest.
LATIN_ALIKE = "аорсеухӏ"
NOVEL_IDN = 20_000
PROTECTED_SHARE = 0.1  # a tenth protected (two-slip keys), the rest known correspondents
NOVEL = 100_000
# A hostile sender's names of many labels, 220 characters of first labels and suffixes
# (gmial.com.armyy.co.uk. … .evil.com): each is read for a domain we know, or a slip of one,
# in front of another, at every dot and hyphen (docs/operations.md).
LONG_NAMES = 2_000
LONG_NAME_LENGTH = 220
SUFFIX_LABELS = ("com", "net", "org", "co", "uk", "de", "gov", "mil")
REPEATED = 500_000
# The organisation the per-sender verdicts are for: its senders and their correspondents,
# drawn as bench/month.py draws them (about 35 each, a few with hundreds), a fifth of them
# domains no list holds (a sender's own contacts the organisation does not know).
ORG = "example.org"
SENDERS = 300
OWN_UNLISTED = 0.2


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


def _slip_and_suffix(rng: random.Random, first_labels: list[str], joint: str) -> str:
    """A first label of a known name with one letter doubled (a slip), ``joint`` and a
    suffix label: ``arrmy.mil``, ``gmaail-com``."""
    label = rng.choice(first_labels)
    at = rng.randrange(len(label))
    return f"{label[:at]}{label[at]}{label[at:]}{joint}{rng.choice(SUFFIX_LABELS)}"


def _long_names(rng: random.Random, first_labels: list[str], count: int) -> list[str]:
    """``count`` names of up to ``LONG_NAME_LENGTH`` characters, labels of known names (one
    letter of each doubled, a slip) and suffixes taking turns, in front of ``evil.com``."""
    names = []
    for _ in range(count):
        name = "evil.com"
        while True:
            longer = f"{_slip_and_suffix(rng, first_labels, '.')}.{name}"
            if len(longer) > LONG_NAME_LENGTH:
                break
            name = longer
        names.append(name)
    return names


def _hyphenated(rng: random.Random, first_labels: list[str], count: int) -> list[str]:
    """``count`` names as a hostile sender writes them, of up to ``LONG_NAME_LENGTH``
    characters: each of three labels words joined by hyphens, first labels of known names
    (one letter of each doubled, a slip) and suffixes taking turns, in front of
    ``evil.com`` (``arrmy-mil-gmaail-com.yahooo-co-uk.evil.com``)."""
    names = []
    for _ in range(count):
        labels = ["", "", ""]
        for tries in range(60):  # until the name is long enough, each label at most 63
            words = _slip_and_suffix(rng, first_labels, "-")
            which = tries % 3
            longer = f"{labels[which]}-{words}" if labels[which] else words
            if len(longer) <= 63:
                labels[which] = longer
            if sum(map(len, labels)) > LONG_NAME_LENGTH - 60:
                break
        names.append(".".join(label for label in labels if label) + ".evil.com")
    return names


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


def relationships(
    rng: random.Random, listed: list[str], taken: set[str]
) -> tuple[list, dict[str, list[str]]]:
    """What `typogate learn` stores for ``SENDERS`` senders of ``ORG`` (each address's
    relationships, its domain's and the organisation's: the sums), as the store hands them
    to a Guard; and each sender's correspondents."""
    from typogate.store.records import Correspondent

    now = datetime.now(UTC)
    unlisted = _synthetic(rng, 2_000, taken)
    rows = []
    own: dict[str, list[str]] = {}
    totals: dict[str, list[int]] = {}
    for number in range(SENDERS):
        sender = f"user{number:03d}@{ORG}"
        wanted = max(3, int(rng.lognormvariate(math.log(35), 0.8)))
        own[sender] = sorted(
            {
                rng.choice(unlisted) if rng.random() < OWN_UNLISTED else rng.choice(listed)
                for _ in range(wanted)
            }
        )
        for domain in own[sender]:
            sent, received = rng.randint(2, 40), rng.randint(1, 6)
            rows.append(Correspondent(sender, domain, sent, now, now, received))
            total = totals.setdefault(domain, [0, 0])
            total[0] += sent
            total[1] += received
    for party in ("*", ORG):
        rows += [Correspondent(party, d, s, now, now, r) for d, (s, r) in totals.items()]
    return rows, own


def _rate(evaluate: Callable[..., object], mail: list[tuple[str, str | None]]) -> float:
    started = time.perf_counter()
    for recipient, sender in mail:
        evaluate(recipient, sender)
    return len(mail) / (time.perf_counter() - started)


def _measure(size: int, queue: multiprocessing.Queue) -> None:
    from typogate import Config, Guard

    protected, known = domain_set(size)
    config = Config(domains={"protected": protected, "known": known})
    rng = random.Random(1)
    taken = set(protected + known)
    # Two novel sets of one kind: each domain's first verdict is measured, with a sender
    # and without, so neither run finds the other's verdicts cached.
    novel = [f"u{i}@{d}" for i, d in enumerate(_synthetic(rng, 2 * NOVEL, taken))]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    guard = Guard(config)
    build = time.perf_counter() - started
    memory = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    rows, own = relationships(rng, known or protected, taken)
    guard.learn_relationships(rows)
    senders = list(own)
    novel_rate = _rate(guard.evaluate, [(address, None) for address in novel[:NOVEL]])
    idns = sorted(
        {
            "".join(rng.choice(LATIN_ALIKE) for _ in range(rng.randint(4, 9))) + ".com"
            for _ in range(2 * NOVEL_IDN)
        }
    )
    idn_rate = _rate(guard.evaluate, [(f"u@{domain}", None) for domain in idns[0::2]])
    # Python's own IDNA codec: typogate's reading of these is what is measured.
    alabels = [domain.encode("idna").decode("ascii") for domain in idns[1::2]]
    alabel_rate = _rate(guard.evaluate, [(f"u@{domain}", None) for domain in alabels])
    first_labels = [domain.split(".")[0] for domain in protected + known]
    long_names = _long_names(rng, first_labels, LONG_NAMES)
    long_rate = _rate(guard.evaluate, [(f"u@{domain}", None) for domain in long_names])
    hyphenated = _hyphenated(rng, first_labels, LONG_NAMES)
    hyphenated_rate = _rate(guard.evaluate, [(f"u@{domain}", None) for domain in hyphenated])
    # Everyday names with a host in front and a hyphen (mail-3.kovi-lamo.com): each is read
    # for a name we know in front, whole or with a hyphen for its dot.
    hosts = _synthetic(rng, 2 * NOVEL_IDN, taken)
    with_hosts = [
        f"u@mail-{i}.{hosts[2 * i].split('.')[0]}-{hosts[2 * i + 1]}" for i in range(NOVEL_IDN)
    ]
    with_hosts_rate = _rate(guard.evaluate, [(address, None) for address in with_hosts])
    # A sender's first send to a domain nobody wrote to: the sender's correspondents are
    # searched for a near-twin of it, on top of the organisation's.
    first_rate = _rate(
        guard.evaluate, [(a, senders[i % SENDERS]) for i, a in enumerate(novel[NOVEL:])]
    )
    # Repeated: a Zipf-like mix of a thousand domains, different mailboxes each time.
    popular = [address.split("@")[1] for address in novel[:1000]] + protected[:200]
    weights = [1 / (rank + 1) for rank in range(len(popular))]
    repeated = [
        f"user{i % 977}@{d}" for i, d in enumerate(rng.choices(popular, weights, k=REPEATED))
    ]
    _rate(guard.evaluate, [(address, None) for address in repeated[:5000]])
    repeated_rate = _rate(guard.evaluate, [(address, None) for address in repeated])
    # The same mix, each from a sender that never wrote there (a first send to a domain
    # whose verdict is cached); and the mail most of a sender's is, to its correspondents.
    first_repeated_rate = _rate(
        guard.evaluate, [(a, senders[i % SENDERS]) for i, a in enumerate(repeated)]
    )
    to_own = [
        (f"p{i % 97}@{rng.choice(own[sender])}", sender)
        for i, sender in enumerate(rng.choices(senders, k=REPEATED))
    ]
    _rate(guard.evaluate, to_own[:5000])
    own_alone_rate = _rate(guard.evaluate, [(address, None) for address, _ in to_own])
    own_rate = _rate(guard.evaluate, to_own)
    queue.put(
        {
            "domains": size,
            "protected": len(protected),
            "known": len(known),
            "build_seconds": build,
            "build_mb": memory,
            "relationships": len(guard.relationships),
            "novel_per_second": novel_rate,
            "novel_idn_per_second": idn_rate,
            "novel_alabel_per_second": alabel_rate,
            "novel_long_per_second": long_rate,
            "novel_hyphenated_per_second": hyphenated_rate,
            "novel_host_and_hyphen_per_second": with_hosts_rate,
            "repeated_per_second": repeated_rate,
            "first_send_novel_per_second": first_rate,
            "first_send_repeated_per_second": first_repeated_rate,
            "to_own_correspondents_per_second": own_rate,
            "to_own_correspondents_alone_per_second": own_alone_rate,
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
    for column in ("domains", "protected", "build s", "build MB", "novel/s", "repeated/s"):
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
    console = Console(width=80)
    console.print(table)
    console.print(
        _rates_beside(
            "… novel IDNs in Cyrillic letters that pass for Latin ones",
            "× = beside the novel names above, same process",
            rows,
            {
                "written in Unicode": ("novel_idn_per_second", "novel_per_second"),
                "as A-labels": ("novel_alabel_per_second", "novel_per_second"),
            },
        )
    )
    console.print(
        _rates_beside(
            f"… novel names of many labels ({LONG_NAME_LENGTH} characters)",
            "× = beside the novel names above, same process",
            rows,
            {
                "slips in front of evil.com": ("novel_long_per_second", "novel_per_second"),
                "… words joined by hyphens": (
                    "novel_hyphenated_per_second",
                    "novel_per_second",
                ),
            },
        )
    )
    console.print(
        _rates_beside(
            "… novel names with a host in front and a hyphen (mail-3.kovi-lamo.com)",
            "× = beside the novel names above, same process",
            rows,
            {
                "host and hyphen": (
                    "novel_host_and_hyphen_per_second",
                    "novel_per_second",
                )
            },
        )
    )
    # Per sender, beside the rates above (× = the ratio, same process).
    console.print(
        _rates_beside(
            f"… for one of {SENDERS} senders with learned correspondents",
            "× = beside the same mail without a sender, same process",
            rows,
            {
                "first send, novel": ("first_send_novel_per_second", "novel_per_second"),
                "first send, repeated": (
                    "first_send_repeated_per_second",
                    "repeated_per_second",
                ),
                "to its own": (
                    "to_own_correspondents_per_second",
                    "to_own_correspondents_alone_per_second",
                ),
            },
        )
    )


def _rates_beside(
    title: str, caption: str, rows: list[dict], columns: dict[str, tuple[str, str]]
) -> Table:
    """A table of rates by index size: ``columns`` maps each heading to the keys of a rate
    and of the rate it is shown beside, as a ratio."""
    table = Table(title=title, caption=caption)
    for column in ("domains", *columns):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            f"{row['domains']:,}",
            *(
                f"{row[rate]:,.0f} ({row[rate] / row[alone]:.2f}×)"
                for rate, alone in columns.values()
            ),
        )
    return table


if __name__ == "__main__":
    main()
