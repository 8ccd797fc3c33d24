"""A month of an organisation's outgoing mail, judged by typogate as it runs in operation.

    .venv/bin/python bench/month.py              # 3 seeds, a Rich table
    .venv/bin/python bench/month.py --seeds 1 --json
    .venv/bin/python bench/month.py --in-order   # one connection: the same figures every run
    .venv/bin/python bench/month.py --new-people 3   # senders who meet new people more readily
    .venv/bin/python bench/month.py --set learning.relationship_mails=1   # a setting's trade

About 300 senders of example.org each write to correspondents of their own (a Zipf mix drawn
from real domain lists: the npm packages free-email-domains and disposable-email-domains,
installed at bench time into bench/.peers/month, and the .gov, .mil and mail-provider lists
of the repository), real near-twins kept. About 1 recipient in 1,000 is a slip, in every
typo class of bench/scenario.py (the benchmark's own generator); half of them are the
habitual slip of a domain, which recurs (army.ml for army.mil), the rest one-offs, and a few
senders have a correspondent's address saved with a slip, sent to again and again. Senders
have address books: at each domain, the people a sender writes to grow by a Chinese
restaurant process (--new-people, an assumption), their local parts drawn from one pool of
names and role addresses (so john.smith or info turn up at several domains), and a slip goes
to the person the sender meant, at the typo domain. Correspondents that exist write back,
from the address written to. Days 1-14 are written as a Postfix log (outbound deliveries,
bounces, inbound replies delivered by local and lmtp) and learned with `typogate learn`;
days 15-30 are judged through `typogate serve` (which loads the learned correspondents),
asked over its policy socket as Postfix asks, with the envelope sender in each request, and
the replies of those days asked about in time order too (Postfix asks for inbound mail as
well: a reply teaches the running gateway). Side by side: the same days judged by a service
with no history, and by one with the same history whose senders answer its warnings:
`gateway.warn_notices` on, each notice received by the bench's own SMTP sink, and at the end
of each day every sender whose warned address was right confirms it with the link in its
notice (the page, then the button, over HTTP), as a sender who reads its notices would; a
sender never confirms a slip. It is the best case of that link: a real sender confirms some
false alarms late or never, and some slips too. And by a fourth, the same again, whose admin
reviews twice, through the real API: before the first judged day, what `typogate learn`
refused (each domain with the senders who wrote there: each sender who meant the domain
gets an allow rule for it, for that sender alone), and /api/pairs at the end of the first
judged week (each pair whose sender meant the domain, the same). A sender who slipped
there gets no rule. Also a best case: every sender is asked, and answers right.

Reported: alerts per 10,000 legitimate messages, the share of messages to typo domains that
are caught (overall and per class), and of slips (a sender and a typo domain, counted once:
a saved slip sent thirty times weighs thirty messages, and one slip; the slips also by
what the month's mail had shown of their intended domain before: nobody had written to it,
only other senders had, the sender once, or more), and the typo domains learned as
correspondents; and
where the alerts come from (distinct sender and domain pairs, domains delivered to in the
learned log or first written to after it, the list each domain was drawn from, the action
taken: a rejection, or a warning that delivers the message with a header); and how true to
address books the month is: of the judged days' legitimate recipients, the share the sender
had written to earlier in the month, and of its slips, the share whose intended address it
had. The judge keeps eight connections busy, as Postfix's smtpd processes do, but no further
apart in the month than a window of 64 requests: free-running connections drifted days
apart, and whether a sender's reply was heard before its next message changed from run to
run.
Writes bench/out/month.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path

import httpx
import idna
from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
import scenario  # noqa: E402
from mta import Sink  # noqa: E402
from ports import free_port, stop_servers_on_sigterm, wait_for_port  # noqa: E402
from web_client import ApiClient, first_admin_password  # noqa: E402

TYPOGATE = str(Path(sys.executable).with_name("typogate"))
OUT = BENCH / "out"
LISTS = BENCH / ".peers" / "month"
NPM_LISTS = {  # package: the file in it that is the list
    "free-email-domains@^1.12": "free-email-domains/domains.json",
    "disposable-email-domains@^1.0": "disposable-email-domains/index.json",
}
ORG = "example.org"
SENDERS = 300
DAYS = 30
LEARNED_DAYS = 14
TYPO_RATE = 0.001
# Share of mail by kind of correspondent, and how steeply it falls from the most written-to
# domain of the kind to the least (a Zipf exponent): the big mail providers, government and
# military partners, small providers, and the long tail of everyone else (the disposable
# list stands in for it: real registered names of every shape, each written to rarely).
KINDS = {
    "providers": (0.35, 1.2),
    "gov": (0.25, 0.9),
    "mil": (0.12, 0.9),
    "free": (0.14, 0.6),
    "tail": (0.14, 0.4),
}
WRITES_BACK = 0.7  # share of real correspondents that answer mail
REPLY_RATE = 0.35  # share of messages to them that get an answer
# Half of all slips are habits: the slip people make of that domain (army.ml for army.mil),
# the same typo domain again, whoever sends; the rest are one-off slips of any class.
HABIT = 0.5
# A few senders have a correspondent's address saved with a slip in it (their address book
# or autocomplete offers it): half their mail to that correspondent goes to the typo domain,
# which is how a slip is delivered again and again (and learned, if deliveries teach).
SAVED_SLIP = 0.01
SAVED_SLIP_USE = 0.5
TYPO_DELIVERED = 0.5  # share of typo domains that accept mail (the rest bounce)
# Senders' address books. The people a sender writes to at one domain grow as a Chinese
# restaurant process, the standard model of a vocabulary that keeps growing (words of a
# text, species of a sample): after n messages to the domain, the next goes to someone new
# with probability NEW_PEOPLE / (n + NEW_PEOPLE), else to someone written to before, in
# proportion to the messages each got. No measured figure for mail is at hand: 1.0 (about
# ln n people after n messages) is an assumption, printed with the results and set with
# --new-people.
NEW_PEOPLE = 1.0
# A new person's local part comes from one pool shared by every domain: first.last, flast
# and first of the names below, and role addresses, each name weighted by its rank (a Zipf
# law of exponent NAME_ZIPF), so that common local parts (john.smith, info) turn up at
# several of a sender's domains, as they do in real mail. Roughly most common first.
# fmt: off
FIRST_NAMES = [
    "james", "john", "robert", "michael", "david", "maria", "william", "mary", "richard",
    "joseph", "thomas", "jennifer", "charles", "linda", "daniel", "elizabeth", "matthew",
    "sarah", "anthony", "jessica", "mark", "karen", "paul", "susan", "steven", "lisa", "andrew",
    "nancy", "kevin", "anna", "brian", "laura", "george", "emma", "peter", "emily", "eric",
    "michelle", "jason", "amanda", "ryan", "olivia", "jacob", "sofia", "gary", "carol",
    "nicholas", "donna", "jose", "ana", "juan", "ahmed", "mohamed", "wei", "li", "priya", "raj",
    "fatima", "hans", "pierre",
]
LAST_NAMES = [
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor",
    "moore", "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez",
    "clark", "ramirez", "lewis", "robinson", "walker", "young", "allen", "king", "wright",
    "scott", "torres", "nguyen", "hill", "flores", "green", "adams", "nelson", "baker", "hall",
    "rivera", "campbell", "mitchell", "carter", "roberts", "kim", "patel", "chen", "wang",
    "singh", "mueller", "rossi", "dubois", "novak", "kowalski",
]
# fmt: on
ROLES = ("info", "office", "admin", "contact", "support", "sales", "hr", "billing")
# the share of new people by the shape of their local part
LOCAL_SHAPES = {"first.last": 0.5, "flast": 0.25, "first": 0.13, "role": 0.12}
NAME_ZIPF = 0.7  # gentler than 1: over only 60 names, 1 made james.smith 2% of all people
CONNECTIONS = 8  # policy connections the judge keeps open, as Postfix's smtpd processes do
WINDOW = 64  # requests in flight together: a few minutes of the month's mail
MONTH = "Mar"
# typogate settings by section and key, each value as TOML text ("1", '"127.0.0.1:25"').
Settings = dict[str, dict[str, str]]
CONFIRMING = "with history, senders confirm"
REVIEWED = "... and the admin's review"
REVIEW_DAY = LEARNED_DAYS + 7  # the end of the first judged week


@dataclass(frozen=True, slots=True)
class Typo:
    domain: str
    intended: str
    cls: str


@dataclass(slots=True)
class Message:
    day: int
    second: int  # of the day
    sender: str
    recipients: list[tuple[str, Typo | None]]  # (address, the slip it is, if one)


@dataclass(slots=True)
class Month:
    outbound: list[Message] = field(default_factory=list)
    inbound: list[tuple[int, int, str, str]] = field(default_factory=list)  # day, s, from, to


def install_lists(console: Console) -> dict[str, list[str]]:
    """The npm domain lists, installed into bench/.peers/month if missing (no scripts run)."""
    if not all((LISTS / "node_modules" / path).exists() for path in NPM_LISTS.values()):
        console.print("[dim]installing free-email-domains, disposable-email-domains (npm)…[/]")
        LISTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"]
            + ["--prefix", str(LISTS), *NPM_LISTS],
            check=True,
            capture_output=True,
        )
    return {
        package.split("@")[0]: json.loads((LISTS / "node_modules" / path).read_text())
        for package, path in NPM_LISTS.items()
    }


def _mail_domain(text: str) -> bool:
    """An ASCII domain a mail server takes (IDNA 2008 for its xn-- labels)."""
    labels = text.split(".")
    if len(labels) < 2 or not all(
        label and label.isascii() and label[0] != "-" and label[-1] != "-" for label in labels
    ):
        return False
    if "xn--" in text:
        try:
            idna.decode(text)
        except idna.IDNAError:
            return False
    return True


def universe(npm: dict[str, list[str]]) -> tuple[dict[str, list[str]], set[str]]:
    """Real correspondent domains by kind, and the set of every real domain the benchmark
    knows (no typo may be one of them)."""
    mil = scenario.read_list(scenario.DOMAINS / "mil_domains.txt")
    hosts = scenario.read_list(scenario.DOMAINS / "mil_hostnames.txt")
    kinds = {
        "providers": scenario.read_list(scenario.PROVIDERS),
        "gov": scenario.read_list(scenario.DOMAINS / "dotgov_domains.txt"),
        # second-level .mil first, then host names that take mail (not web servers)
        "mil": mil + [h for h in hosts if h.count(".") >= 2 and not h.startswith("www")],
        "free": [d for d in npm["free-email-domains"] if _mail_domain(d)],
        "tail": [d for d in npm["disposable-email-domains"] if _mail_domain(d)],
    }
    real = set().union(*map(set, kinds.values())) | set(hosts)
    return {kind: sorted(set(domains)) for kind, domains in kinds.items()}, real


def _ranked(kinds: dict[str, list[str]], rng: random.Random) -> dict[str, list[str]]:
    """Each kind in an order of popularity of this month's own (the big providers first, as
    in anyone's mail), at most 20,000 of a kind."""
    ranked = {}
    for kind, domains in kinds.items():
        domains = list(domains)
        rng.shuffle(domains)
        if kind == "providers":
            head = ["gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com"]
            domains = head + [d for d in domains if d not in head]
        ranked[kind] = domains[:20_000]
    return ranked


def _stable(text: str) -> int:
    """A hash that is the same in every run (``hash`` of a str is salted per process)."""
    return zlib.crc32(text.encode())


def _zipf(count: int, exponent: float = 1.0) -> list[float]:
    return [1 / (rank + 1) ** exponent for rank in range(count)]


def local_parts() -> tuple[list[str], list[float]]:
    """The pool new people's local parts are drawn from, and its cumulative weights: each
    shape's share of LOCAL_SHAPES split by the Zipf weights of the names in it (flast of
    two first names with one initial is one local part, with both their weights)."""
    first = dict(zip(FIRST_NAMES, _zipf(len(FIRST_NAMES), NAME_ZIPF), strict=True))
    last = dict(zip(LAST_NAMES, _zipf(len(LAST_NAMES), NAME_ZIPF), strict=True))
    roles = dict(zip(ROLES, _zipf(len(ROLES), NAME_ZIPF), strict=True))
    pairs = sum(first.values()) * sum(last.values())
    weights: Counter[str] = Counter()
    for given, w_given in first.items():
        weights[given] += LOCAL_SHAPES["first"] * w_given / sum(first.values())
        for family, w_family in last.items():
            share = w_given * w_family / pairs
            weights[f"{given}.{family}"] += LOCAL_SHAPES["first.last"] * share
            weights[f"{given[0]}{family}"] += LOCAL_SHAPES["flast"] * share
    for role, w_role in roles.items():
        weights[role] += LOCAL_SHAPES["role"] * w_role / sum(roles.values())
    parts = sorted(weights, key=lambda part: (-weights[part], part))
    return parts, list(itertools.accumulate(weights[part] for part in parts))


@dataclass(slots=True)
class Book:
    """The people one sender writes to at one domain: a local part per message sent there,
    so a draw from it is in proportion to the messages each person got."""

    sent: list[str] = field(default_factory=list)
    people: set[str] = field(default_factory=set)

    def draw(self, rng: random.Random, new_people: float, pool: tuple[list, list]) -> str:
        """The person the sender's next message to the domain is for, counted as sent to: a
        Chinese restaurant process of concentration ``new_people`` (after n messages, someone
        new with probability new_people / (n + new_people), else the person of one of the n
        drawn evenly)."""
        if not self.sent or rng.random() * (len(self.sent) + new_people) < new_people:
            person = self.meet(rng, pool)
        else:
            person = rng.choice(self.sent)
        self.sent.append(person)
        return person

    def meet(self, rng: random.Random, pool: tuple[list, list]) -> str:
        """Someone new, from the shared pool (never a local part already in this book), not
        yet sent to."""
        parts, cumulative = pool
        for _ in range(100):
            person = rng.choices(parts, cum_weights=cumulative)[0]
            if person not in self.people:
                break
        else:  # the pool is spent on this book (only with a huge --new-people)
            person = f"{person}{len(self.people)}"
        self.people.add(person)
        return person

    def favourite(self) -> str | None:
        """The person most written to here (the first met, of a tie), if any."""
        return Counter(self.sent).most_common(1)[0][0] if self.sent else None


# The typo classes of bench/scenario.py a month's mail can show (slips under a subdomain
# the sender never wrote are left out; Unicode look-alikes are logged as A-labels).
CLASSES = [
    "omission",
    "doubling",
    "keyboard",
    "insertion",
    "transposition",
    "ascii_homoglyph",
    "lookalike_sequence",
    "unicode_confusable",
    "suffix",
    "suffix_real",
    "dot",
    "merged_suffix",
    "two_slips",
    "doppelganger",
]


def _slips(intended: str, real: set[str], known: dict[str, dict[str, list[str]]]) -> dict:
    """Every slip for ``intended`` by class (none that is a real domain), remembered in
    ``known``."""
    if intended in known:
        return known[intended]
    variants = scenario.typo_variants(intended, random.Random(0))
    name, suffix = scenario.split(intended)
    head, _, last = name.rpartition(".")
    if head:  # the dot left out between a host and its registrable domain
        variants["doppelganger"] = [f"{head}{last}.{suffix}"]
    variants["unicode_confusable"] = variants.pop("unicode_confusable_xn", [])
    usable = {}
    for cls in CLASSES:
        found = [v for v in variants.get(cls, []) if v not in real and _mail_domain(v)]
        if found:
            usable[cls] = sorted(set(found) - {intended})
    known[intended] = usable
    return usable


def _typo(
    meant: list[str], rng: random.Random, real: set[str], known: dict, seed: int
) -> Typo | None:
    """The habitual slip of the domain the sender wanted (``meant[0]``), or a one-off slip
    in a class drawn at random, of the first domain in ``meant`` it applies to (the domain
    the sender wanted, else another of its correspondents)."""
    if rng.random() < HABIT and (usable := _slips(meant[0], real, known)):
        habit = random.Random(f"{seed}:{meant[0]}")
        cls = habit.choice(sorted(usable))
        return Typo(habit.choice(usable[cls]), meant[0], cls)
    cls = rng.choice(CLASSES)
    for intended in meant:
        usable = _slips(intended, real, known)
        if cls in usable:
            break
    else:
        intended = meant[0]
        usable = _slips(intended, real, known)
        if not usable:
            return None
        cls = rng.choice(sorted(usable))
    return Typo(rng.choice(usable[cls]), intended, cls)


def simulate(
    seed: int, kinds: dict[str, list[str]], real: set[str], new_people: float = NEW_PEOPLE
) -> Month:
    """Every message of the month, and the replies that come back.

    Each slip is drawn with a generator of its own, seeded from the month's: how many
    numbers a slip takes depends on how many variants its domain has, so a change to the
    typo generator (bench/scenario.py) changes the slips and leaves the month's traffic as
    it was.

    Each sender has an address book (a :class:`Book` per correspondent domain), and a
    sender's messages of a day are made in time order, so that its n-th message to a domain
    is the n-th in the month. A slip is to the person the sender meant, drawn from the book
    of the intended domain (and counted there); a saved slip is one address, the intended
    domain's most written-to person when it is first used (someone new if none), at the
    typo domain. The people are drawn with a generator of each sender's own too: the
    month's traffic is the same whatever ``new_people``."""
    rng = random.Random(seed)
    people = local_parts()  # the pool new people's local parts are drawn from
    kinds = _ranked(kinds, rng)
    pool = [domain for domains in kinds.values() for domain in domains]
    weights = []
    for kind, domains in kinds.items():
        share, exponent = KINDS[kind]
        zipf = _zipf(len(domains), exponent)
        total = sum(zipf)
        weights += [share * w / total for w in zipf]
    popularity = list(itertools.accumulate(weights))
    writes_back = {}
    slips: dict[str, dict[str, list[str]]] = {}
    month = Month()
    for number in range(SENDERS):
        sender = f"user{number:03d}@{ORG}"
        wanted = max(3, int(rng.lognormvariate(math.log(35), 0.8)))
        mine = list(dict.fromkeys(rng.choices(pool, cum_weights=popularity, k=wanted * 2)))
        mine = mine[:wanted]
        own_weights = _zipf(len(mine), 1.1)
        activity = rng.lognormvariate(math.log(10), 0.7)  # messages per working day
        saved = None
        saved_person: str | None = None  # the person of the saved address, once first used
        books: defaultdict[str, Book] = defaultdict(Book)  # by correspondent domain
        whom = random.Random(rng.getrandbits(64))  # draws the people of the sender's books
        if rng.random() < SAVED_SLIP:
            meant = mine[: rng.randint(1, 5)][::-1]
            saved = _typo(meant, random.Random(rng.getrandbits(64)), real, slips, seed)
        for day in range(1, DAYS + 1):
            weekend = day % 7 in (6, 0)
            count = _poisson(rng, activity * (0.15 if weekend else 1.0))
            for second in sorted(rng.randrange(7 * 3600, 19 * 3600) for _ in range(count)):
                wanted_rcpts = 1 if rng.random() < 0.8 else rng.randint(2, 4)
                recipients = []
                for domain in dict.fromkeys(rng.choices(mine, own_weights, k=wanted_rcpts)):
                    typo = None
                    if saved is not None and domain == saved.intended:
                        typo = saved if rng.random() < SAVED_SLIP_USE else None
                    elif rng.random() < TYPO_RATE:
                        meant = [domain, *rng.choices(mine, own_weights, k=20)]
                        typo = _typo(meant, random.Random(rng.getrandbits(64)), real, slips, seed)
                    book = books[typo.intended if typo else domain]
                    if typo is not None and typo is saved:
                        if saved_person is None:  # the address saved with the slip
                            saved_person = book.favourite() or book.meet(whom, people)
                        book.sent.append(saved_person)
                        local = saved_person
                    else:
                        local = book.draw(whom, new_people, people)
                    recipients.append((f"{local}@{typo.domain if typo else domain}", typo))
                    if typo is None:
                        answers = writes_back.setdefault(domain, rng.random() < WRITES_BACK)
                        if answers and rng.random() < REPLY_RATE:
                            later = second + rng.randrange(600, 86_400)
                            month.inbound.append(
                                (day + later // 86_400, later % 86_400, f"{local}@{domain}", sender)
                            )
                month.outbound.append(Message(day, second, sender, recipients))
    month.outbound.sort(key=lambda m: (m.day, m.second))
    month.inbound.sort()
    return month


def _poisson(rng: random.Random, mean: float) -> int:
    count, limit, product = 0, math.exp(-mean), rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _stamp(day: int, second: int) -> str:
    return f"{MONTH} {day:2d} {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"


def write_log(path: Path, month: Month, days: int) -> dict[str, int]:
    """The Postfix log of days 1..``days``: what the MTA would have written."""
    events: list[tuple[int, int, int, list[str]]] = []
    queue = 0

    def qid() -> str:
        nonlocal queue
        queue += 1
        return f"{queue:010X}"

    delivered: Counter[str] = Counter()
    for message in month.outbound:
        if message.day > days:
            break
        stamp = _stamp(message.day, message.second)
        user = message.sender.split("@")[0]
        q = qid()
        lines = [
            f"{stamp} mx1 postfix/submission/smtpd[2101]: {q}: client=ws{_stable(user) % 90}"
            f".{ORG}[10.0.{_stable(user) % 200}.7], sasl_method=PLAIN, sasl_username={user}",
            f"{stamp} mx1 postfix/cleanup[2102]: {q}: message-id=<{q}.{user}@{ORG}>",
            f"{stamp} mx1 postfix/qmgr[90]: {q}: from=<{message.sender}>, size=4211, "
            f"nrcpt={len(message.recipients)} (queue active)",
        ]
        bounced = []
        for address, typo in message.recipients:
            domain = address.rpartition("@")[2]
            accepts = typo is None or (_stable(domain) % 1000) < TYPO_DELIVERED * 1000
            if accepts:
                delivered[domain] += 1
                lines.append(
                    f"{stamp} mx1 postfix/smtp[2103]: {q}: to=<{address}>, relay=mx.{domain}"
                    "[203.0.113.25]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=2.0.0, "
                    "status=sent (250 2.0.0 Ok: queued)"
                )
            else:
                bounced.append(address)
                lines.append(
                    f"{stamp} mx1 postfix/smtp[2103]: {q}: to=<{address}>, relay=none, "
                    "delay=0.3, delays=0.1/0/0.2/0, dsn=5.4.4, status=bounced (Host or domain "
                    f"name not found. Name service error for name={domain} type=MX)"
                )
        lines.append(f"{stamp} mx1 postfix/qmgr[90]: {q}: removed")
        if bounced:  # the non-delivery notice, delivered to the sender's mailbox
            notice = qid()
            lines += [
                f"{stamp} mx1 postfix/bounce[2104]: {q}: sender non-delivery notification: "
                f"{notice}",
                f"{stamp} mx1 postfix/qmgr[90]: {notice}: from=<>, size=2950, nrcpt=1 "
                "(queue active)",
                f"{stamp} mx1 postfix/local[2105]: {notice}: to=<{message.sender}>, "
                "relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent "
                "(delivered to mailbox)",
                f"{stamp} mx1 postfix/qmgr[90]: {notice}: removed",
            ]
        events.append((message.day, message.second, 0, lines))
    for day, second, sender, recipient in month.inbound:
        if day > days:
            break
        stamp = _stamp(day, second)
        domain = sender.rpartition("@")[2]
        q = qid()
        agent = (
            "lmtp[2201]: {q}: to=<{r}>, relay=mail.{org}[private/dovecot-lmtp], delay=0.2, "
            "delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <{r}> Saved)"
            if second % 2
            else "local[2202]: {q}: to=<{r}>, relay=local, delay=0.1, delays=0.1/0/0/0, "
            "dsn=2.0.0, status=sent (delivered to mailbox)"
        )
        lines = [
            f"{stamp} mx1 postfix/smtpd[2200]: connect from mail.{domain}[198.51.100.40]",
            f"{stamp} mx1 postfix/smtpd[2200]: {q}: client=mail.{domain}[198.51.100.40]",
            f"{stamp} mx1 postfix/cleanup[2102]: {q}: message-id=<{q}@{domain}>",
            f"{stamp} mx1 postfix/qmgr[90]: {q}: from=<{sender}>, size=6120, nrcpt=1 "
            "(queue active)",
            f"{stamp} mx1 postfix/" + agent.format(q=q, r=recipient, org=ORG),
            f"{stamp} mx1 postfix/qmgr[90]: {q}: removed",
            f"{stamp} mx1 postfix/smtpd[2200]: disconnect from mail.{domain}[198.51.100.40] "
            "ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7",
        ]
        events.append((day, second, 1, lines))
    events.sort(key=lambda event: event[:3])
    with open(path, "w", encoding="ascii") as out:
        for *_, lines in events:
            out.write("\n".join(lines) + "\n")
    return delivered


def unanswered_repeats(month: Month, judged: list[Message]) -> set[tuple[int, int]]:
    """The judged recipients (message number, position) whose domain the sender had written
    to before and that had never written back: a real domain that does not answer and a
    slip sent again look alike there, and deliveries alone may teach neither."""
    replies = [(day, second, sender.rpartition("@")[2]) for day, second, sender, _ in month.inbound]
    number = {id(message): n for n, message in enumerate(judged)}
    written: set[tuple[str, str]] = set()
    answered: set[str] = set()
    repeats = set()
    heard = 0
    for message in month.outbound:
        while heard < len(replies) and replies[heard][:2] <= (message.day, message.second):
            answered.add(replies[heard][2])
            heard += 1
        for position, (address, _) in enumerate(message.recipients):
            domain = address.rpartition("@")[2]
            pair = (message.sender, domain)
            if id(message) in number and pair in written and domain not in answered:
                repeats.add((number[id(message)], position))
            written.add(pair)
    return repeats


# What the organisation's mail showed of a slip's intended domain before the slip: the
# one thing that decides whether it can be caught at all (a domain nobody wrote to is
# unknown to typogate, whatever the slip).
KNOWLEDGE = (
    "nobody had written to it",
    "only others had",
    "the sender had, once",
    "the sender had, twice or more",
)


def intended_known(month: Month, judged: list[Message]) -> dict[tuple[int, int], str]:
    """For each judged typo recipient (message number, position), the :data:`KNOWLEDGE` of
    its intended domain: who had delivered mail to it (no slip), from day 1 up to the
    message."""
    number = {id(message): n for n, message in enumerate(judged)}
    by_sender: Counter[tuple[str, str]] = Counter()
    anyone: set[str] = set()
    known = {}
    for message in month.outbound:  # in time order
        for position, (address, typo) in enumerate(message.recipients):
            if typo is None:
                domain = address.rpartition("@")[2]
                by_sender[message.sender, domain] += 1
                anyone.add(domain)
            elif id(message) in number:
                own = by_sender[message.sender, typo.intended]
                level = min(own, 2) + 1 if own else int(typo.intended in anyone)
                known[number[id(message)], position] = KNOWLEDGE[level]
    return known


def address_books(month: Month) -> dict[str, int]:
    """How true to address books the month is, counted over the judged days: the legitimate
    recipients whose very address the sender had written to earlier in the month (from day
    1), and the typo recipients whose intended address (the person at the domain meant)
    it had; and over the whole month, the people (distinct addresses) each sender wrote to,
    and the local parts a sender wrote to at two domains or more."""
    written: set[tuple[str, str]] = set()
    counts: Counter[str] = Counter()
    for message in month.outbound:  # in time order
        if message.day > LEARNED_DAYS:
            for address, typo in message.recipients:
                if typo is None:
                    counts["legitimate"] += 1
                    counts["legitimate_known"] += (message.sender, address) in written
                else:
                    meant = f"{address.rpartition('@')[0]}@{typo.intended}"
                    counts["typos"] += 1
                    counts["typos_intended_known"] += (message.sender, meant) in written
        written.update((message.sender, address) for address, _ in message.recipients)
    domains: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for message in month.outbound:
        for address, typo in message.recipients:
            if typo is None:
                local, _, domain = address.rpartition("@")
                domains[message.sender, local].add(domain)
    counts["people"] = sum(len(found) for found in domains.values())
    counts["local_parts"] = len(domains)
    counts["local_parts_at_several_domains"] = sum(len(found) > 1 for found in domains.values())
    return dict(counts)


def _request(message: Message, address: str, number: int) -> bytes:
    user = message.sender.split("@")[0]
    return (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTPSA\n"
        f"client_address=10.0.{_stable(user) % 200}.7\nclient_name=ws.{ORG}\n"
        f"helo_name=ws.{ORG}\nsasl_method=PLAIN\nsasl_username={user}\n"
        f"sender={message.sender}\nrecipient={address}\nqueue_id=\n"
        f"instance={number:x}.0.0\nsize=4211\n\n"
    ).encode()


def _reply(sender: str, recipient: str, number: int) -> bytes:
    """Mail from outside to one of ours, as Postfix asks about it: no authentication."""
    return (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        "client_address=198.51.100.40\nclient_name=mail.example.net\n"
        f"helo_name=mail.example.net\nsender={sender}\nrecipient={recipient}\nqueue_id=\n"
        f"instance={number:x}.1.0\nsize=6120\n\n"
    ).encode()


async def _ask(
    lane: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    requests: list[tuple[int, bytes]],
    answers: dict[int, str],
) -> None:
    reader, writer = lane
    for key, request in requests:
        writer.write(request)
        raw = await reader.readuntil(b"\n\n")
        answers[key] = raw.decode().strip().removeprefix("action=")


async def judge(
    ports: list[int], requests: list[bytes], connections: int = CONNECTIONS
) -> list[dict[int, str]]:
    """Every request to every service, as Postfix asks: one at a time per connection,
    ``connections`` connections at once, the month's mail in time order a window at a time
    (connections that ran on alone would judge one day's mail before another's). With one
    connection, strictly in time order: the same answers in every run."""
    answers: list[dict[int, str]] = [{} for _ in ports]
    numbered = list(enumerate(requests))
    lanes = [
        (i, await asyncio.open_connection("127.0.0.1", port))
        for i, port in enumerate(ports)
        for _ in range(connections)
    ]
    try:
        for start in range(0, len(numbered), WINDOW):
            window = numbered[start : start + WINDOW]
            await asyncio.gather(
                *(
                    _ask(lane, window[spot % connections :: connections], answers[i])
                    for spot, (i, lane) in enumerate(lanes)
                )
            )
    finally:
        for _, (_, writer) in lanes:
            writer.close()
    return answers


def setting(text: str) -> tuple[str, str, str]:
    """``SECTION.KEY=VALUE`` (VALUE in TOML: ``learning.relationship_mails=1``) as section,
    key and the value's TOML text; a section may be nested (``actions.misdelivery.typo``)."""
    name, equals, value = text.partition("=")
    section, dot, key = name.strip().rpartition(".")
    if not (equals and dot and section and key):
        raise ValueError(f"{text!r} is not SECTION.KEY=VALUE")
    try:
        tomllib.loads(f"value = {value}")
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{value!r} is no TOML value: {error}") from None
    return section, key, value.strip()


def service_settings(port: int, notices: int | None, web: str | None) -> Settings:
    """What the bench sets itself for a service on policy ``port``: with ``notices`` (an
    SMTP port), warning notices sent there, and the web interface at ``web``."""
    own: Settings = {
        "gateway": {"policy_listen": f'"127.0.0.1:{port}"', "own_domains": f'["{ORG}"]'}
    }
    if notices is not None and web is not None:
        own["gateway"] |= {"notice_relay": f'"127.0.0.1:{notices}"', "warn_notices": "true"}
        # httpx, unlike a browser, sends no Secure cookie to http://127.0.0.1
        own["web"] = {"listen": f'"{web.removeprefix("http://")}"', "secure_cookies": "false"}
        own["release"] = {"base_url": f'"{web}"'}
    return own


def config_text(own: Settings, settings: Settings) -> str:
    """A typogate configuration: the bench's ``own`` settings and the ``settings`` given on
    the command line (which may not change the bench's own)."""
    sections: Settings = {section: dict(keys) for section, keys in own.items()}
    for section, keys in settings.items():
        for key, value in keys.items():
            if key in own.get(section, {}):
                raise ValueError(f"{section}.{key} is set by the bench itself")
            sections.setdefault(section, {})[key] = value
    return "".join(
        f"[{section}]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items())
        for section, keys in sections.items()
    )


class Service:
    """`typogate serve` (policy service only) on a store, on a free loopback port; stopped
    by its pid. With ``notices`` (an SMTP port), its web interface too, and warning
    notices with their confirm links sent there."""

    def __init__(
        self,
        work: Path,
        name: str,
        db: str,
        settings: Settings,
        notices: int | None = None,
    ) -> None:
        self.port = free_port()
        config = work / f"{name}.toml"
        web = ["--no-web"]
        self.web: str | None = None  # the web interface's URL, when it serves one
        if notices is not None:
            self.web = f"http://127.0.0.1:{free_port()}"
            web = []
        config.write_text(config_text(service_settings(self.port, notices, self.web), settings))
        self.log_path = work / f"{name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [TYPOGATE, "serve", *web, "--no-milter", "--db", db, "--config", str(config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=work,
        )

    def wait(self) -> None:
        try:
            wait_for_port(self.port, timeout=120)
            if self.web is not None:
                wait_for_port(int(self.web.rpartition(":")[2]), timeout=120)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def judge_confirming(
    service: Service,
    sink: Sink,
    timeline: list[tuple[int, int, bytes, tuple[int, int] | None]],
    judged: list[Message],
    connections: int,
    *,
    review: bool = False,
) -> tuple[dict[int, str], Counter[str]]:
    """The judged days asked of ``service`` a day at a time, as :func:`judge` asks; after
    each day, every sender whose warned address was right confirms it with the link in its
    notice (the page, then its button). With ``review``, the admin also goes through
    ``/pairs`` at the end of the first judged week (:func:`review_pairs`). The answers by
    request number, and counts: the warnings, the notices with a confirm link, the
    confirmations, the warned slips whose notice had a link (a careless sender's chance to
    confirm a slip), the warnings whose notice was not found, and the admin's rules."""
    answers: dict[int, str] = {}
    counts: Counter[str] = Counter()
    seen = 0  # notices looked at so far, in the order the sink got them
    with httpx.Client(timeout=30) as web:
        for today, day in itertools.groupby(range(len(timeline)), key=lambda key: timeline[key][0]):
            keys = list(day)
            got = asyncio.run(judge([service.port], [timeline[k][2] for k in keys], connections))
            warned = []
            for local, key in enumerate(keys):
                answers[key] = got[0][local]
                spot = timeline[key][3]
                if spot is not None and _action(answers[key]) == "warn":
                    warned.append(spot)
            counts["warnings"] += len(warned)
            deadline = time.monotonic() + 60
            while len(sink.messages) < counts["warnings"]:  # one notice per warning
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{counts['warnings'] - len(sink.messages)} notices missing")
                time.sleep(0.05)
            with sink.lock:
                notices = [
                    (m.recipients, message_from_bytes(m.data).get_payload(decode=True).decode())
                    for m in sink.messages[seen:]
                ]
                seen = len(sink.messages)
            for number, position in warned:
                message = judged[number]
                address, typo = message.recipients[position]
                found = next(
                    (n for n in notices if n[0] == [message.sender] and address in n[1]), None
                )
                if found is None:
                    counts["notices_not_found"] += 1
                    continue
                notices.remove(found)
                link = re.search(r"http://\S+/confirm/\S+", found[1])
                if link is None:
                    continue
                counts["links"] += 1
                if typo is not None:
                    counts["slips_with_link"] += 1
                    continue
                page = web.get(link.group(0))
                token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                if token is None:
                    raise RuntimeError(f"no confirm form at {link.group(0)}: {page.status_code}")
                done = web.post(link.group(0), data={"csrf_token": token.group(1)})
                if "Thank you" not in done.text:
                    raise RuntimeError(f"confirming failed: {done.status_code}")
                counts["confirmed"] += 1
            if review and today == REVIEW_DAY:
                counts.update(review_pairs(service, judged, timeline, answers))
    return answers, counts


def _a_labels(domain: str) -> str:
    """``domain`` in its ASCII form (xn-- labels), as the month writes typo domains."""
    try:
        return idna.encode(domain, uts46=True).decode()
    except idna.IDNAError:
        return domain


def review_pairs(
    service: Service,
    judged: list[Message],
    timeline: list[tuple[int, int, bytes, tuple[int, int] | None]],
    answers: dict[int, str],
) -> Counter[str]:
    """The admin's first-week review, through the real API: each pair on ``/api/pairs``
    whose sender says the domain is meant (the admin asks; the month knows) gets an allow
    rule for that sender alone; a pair with a slip in it gets none. Best case again: every
    pair is asked about, and every sender answers."""
    slips = _slipped(judged, REVIEW_DAY)
    alerts = sum(
        1 for key, answer in answers.items() if timeline[key][3] is not None and answer != "DUNNO"
    )
    admin = _admin(service)
    counts: Counter[str] = Counter()
    try:
        deadline = time.monotonic() + 60
        while True:  # the alerts are counted in batches, a second apart
            listed = admin.get("/api/pairs", params={"days": 30, "limit": 1000})
            listed.raise_for_status()
            pairs = listed.json()
            counted = sum(p["count"] for p in pairs)
            if counted >= alerts:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the store counts {counted} of {alerts} alerts")
            time.sleep(0.2)
        for pair in pairs:
            allowed = _allow_if_meant(admin, slips, pair["domain"], pair["sender"])
            counts["rules" if allowed else "pairs_with_a_slip"] += 1
    finally:
        admin.close()
    return counts


def review_refusals(service: Service, refused: list[dict], month: Month) -> Counter[str]:
    """The admin's review of what ``typogate learn`` refused, before the first judged day,
    through the real API: each sender it names beside a domain, who meant the domain (the
    admin asks; the month knows), gets an allow rule for that domain, for that sender
    alone; a sender who slipped there gets none. Best case, as :func:`review_pairs`."""
    slips = _slipped(month.outbound, LEARNED_DAYS)
    admin = _admin(service)
    counts: Counter[str] = Counter()
    slipped: dict[tuple[str, str], int] = {}  # (sender, domain) -> its deliveries in the log
    try:
        for entry in refused:
            for written in entry["senders"]:
                allowed = _allow_if_meant(admin, slips, entry["domain"], written["sender"])
                counts["refused_rules" if allowed else "refused_with_a_slip"] += 1
                if not allowed:
                    slipped[(written["sender"], _a_labels(entry["domain"]))] = written["deliveries"]
    finally:
        admin.close()
    # What a careless review costs: had every sender said yes, the judged days' messages
    # to typo domains that an allow rule would then have let through, and those of them
    # to a slip the sender had delivered to twice or more in the log (a saved one).
    for message in month.outbound:
        if message.day <= LEARNED_DAYS:
            continue
        for address, typo in message.recipients:
            delivered = slipped.get((message.sender, address.rpartition("@")[2]))
            if typo is not None and delivered is not None:
                counts["typos_a_yes_lets_through"] += 1
                counts["typos_a_yes_lets_through_saved"] += delivered >= 2
    return counts


def _slipped(messages: list[Message], last_day: int) -> set[tuple[str, str]]:
    """(sender, typo domain) of each slip in ``messages`` up to ``last_day``: what the
    sender, asked, says it did not mean."""
    return {
        (message.sender, address.rpartition("@")[2])
        for message in messages
        if message.day <= last_day
        for address, typo in message.recipients
        if typo is not None
    }


def _admin(service: Service) -> ApiClient:
    """The dashboard's first admin, signed in to ``service``'s API."""
    return ApiClient(service.web, "admin", first_admin_password(service.log_path.read_text()))


def _allow_if_meant(
    admin: ApiClient, slips: set[tuple[str, str]], domain: str, sender: str
) -> bool:
    """The admin asks ``sender`` whether ``domain`` is meant (the month knows: not where it
    slipped) and, if so, allows it for that sender alone; whether a rule was added."""
    # The API names a domain in Unicode; the month's slips are A-labels (as logged).
    if (sender, _a_labels(domain)) in slips:
        return False
    added = admin.post(
        "/api/rules",
        json={"domain": domain, "action": "allow", "senders": [sender]},
        headers={"X-CSRF-Token": admin.csrf_token},
    )
    if added.status_code != 201:
        raise RuntimeError(f"the admin's rule was refused: {added.text}")
    return True


def learned_typos(db: str, typo_domains: set[str]) -> list[str]:
    """The typo domains the learned history makes the organisation's correspondents, asked
    of the Guard that typogate's runtime opens on the store (as `typogate serve` does)."""
    from typogate.config import Config
    from typogate.policy.verdict import ALLOWED_KNOWN
    from typogate.runtime import Runtime

    runtime = Runtime.open(Config(), db)
    try:
        judge = runtime.guard.judge_domain
        return sorted(d for d in typo_domains if judge(d).reason == ALLOWED_KNOWN)
    finally:
        runtime.close()


def run_seed(
    seed: int,
    kinds: dict[str, list[str]],
    real: set[str],
    console: Console,
    settings: Settings,
    connections: int = CONNECTIONS,
    new_people: float = NEW_PEOPLE,
) -> dict:
    kind_of: dict[str, str] = {}  # the list a domain was drawn from (the first that has it)
    for kind, domains in kinds.items():
        for domain in domains:
            kind_of.setdefault(domain, kind)
    started = time.perf_counter()
    month = simulate(seed, kinds, real, new_people)
    with tempfile.TemporaryDirectory(prefix="typogate-month-") as folder:
        work = Path(folder)
        log = work / "mail.log"
        delivered = write_log(log, month, LEARNED_DAYS)
        history = f"sqlite:///{work / 'history.db'}"
        learning = work / "learn.toml"
        learning.write_text(config_text({}, settings))
        learn = subprocess.run(
            [TYPOGATE, "learn", str(log), "--db", history, "--config", str(learning), "--json"],
            capture_output=True,
            text=True,
        )
        if learn.returncode != 0:
            raise RuntimeError(f"typogate learn failed: {learn.stderr}")
        taught = json.loads(learn.stdout)
        log_typos = {
            r[1].domain
            for m in month.outbound
            if m.day <= LEARNED_DAYS
            for r in m.recipients
            if r[1] is not None
        }
        learned = learned_typos(history, log_typos)
        judged = [m for m in month.outbound if m.day > LEARNED_DAYS]
        repeats = unanswered_repeats(month, judged)
        knowledge = intended_known(month, judged)
        # Outbound recipients and the replies that come in meanwhile, in time order, as
        # Postfix asks for both: a reply teaches the running gateway (mail received).
        timeline: list[tuple[int, int, bytes, tuple[int, int] | None]] = []
        for number, message in enumerate(judged):
            for position, (address, _) in enumerate(message.recipients):
                request = _request(message, address, number)
                timeline.append((message.day, message.second, request, (number, position)))
        replies = [r for r in month.inbound if LEARNED_DAYS < r[0] <= DAYS]
        for number, (day, second, sender, recipient) in enumerate(replies):
            timeline.append((day, second, _reply(sender, recipient, number), None))
        timeline.sort(key=lambda event: event[:2])
        requests = [request for *_, request, _ in timeline]
        where = [(key, spot) for key, (*_, spot) in enumerate(timeline) if spot is not None]
        stores = {"with history": history, "without history": f"sqlite:///{work / 'empty.db'}"}
        services = {
            name: Service(work, name.split()[0], db, settings) for name, db in stores.items()
        }
        sinks = {}
        for name, file in ((CONFIRMING, "confirming"), (REVIEWED, "reviewed")):
            shutil.copy(work / "history.db", work / f"{file}.db")
            stores[name] = f"sqlite:///{work / f'{file}.db'}"
            sinks[name] = Sink(free_port()).start()
            services[name] = Service(work, file, stores[name], settings, sinks[name].port)
        try:
            for service in services.values():
                service.wait()
            judging = time.perf_counter()
            ports = [s.port for name, s in services.items() if name not in sinks]
            answers = asyncio.run(judge(ports, requests, connections))
            judging = time.perf_counter() - judging
            humans: dict[str, dict[str, int]] = {}
            for name in sinks:
                # The admin's first review, of what learn refused, is before the first day.
                said = (
                    review_refusals(services[name], taught["refused"], month)
                    if name == REVIEWED
                    else Counter()
                )
                got, counts = judge_confirming(
                    services[name],
                    sinks[name],
                    timeline,
                    judged,
                    connections,
                    review=name == REVIEWED,
                )
                answers.append(got)
                humans[name] = dict(counts + said)
        finally:
            for service in services.values():
                service.stop()
            for sink in sinks.values():
                sink.stop()
        # What the running gateways learned too, as their stores hold it at the month's end.
        month_typos = {t.domain for m in month.outbound for _, t in m.recipients if t is not None}
        learned_by_end = {name: learned_typos(db, month_typos) for name, db in stores.items()}
    result: dict = {
        "seed": seed,
        "messages": len(month.outbound),
        "log_messages": sum(m.day <= LEARNED_DAYS for m in month.outbound),
        "inbound_in_log": sum(day <= LEARNED_DAYS for day, *_ in month.inbound),
        "judged_messages": len(judged),
        "judged_requests": len(where),
        "replies_in_judged_days": len(requests) - len(where),
        "typo_domains_in_log": len(log_typos),
        # delivered often enough to become a correspondent if deliveries alone taught
        "typo_domains_delivered_3": sum(delivered[d] >= 3 for d in log_typos),
        "typo_domains_learned": learned,
        "typo_domains_in_month": len(month_typos),
        "learn": {
            "deliveries": taught["deliveries"],
            "received": taught["received"],
            "refused": len(taught["refused"]),
            "refused_typo_domains": sorted(
                r["domain"] for r in taught["refused"] if r["domain"] in log_typos
            ),
            "refused_real_domains": sorted(
                r["domain"] for r in taught["refused"] if r["domain"] not in log_typos
            ),
        },
        "humans": humans,
        "new_people": new_people,
        "settings": [
            f"{section}.{key}={value}"
            for section, keys in settings.items()
            for key, value in keys.items()
        ],
        "address_books": address_books(month),
        "connections": connections,
        "requests_per_second": 2 * len(requests) / judging,
        "seconds": time.perf_counter() - started,
        "runs": {},
    }
    for (name, _), got in zip(services.items(), answers, strict=True):
        answer = [[""] * len(m.recipients) for m in judged]
        for key, (number, position) in where:
            answer[number][position] = got[key]
        alert = [[a != "DUNNO" for a in row] for row in answer]
        legit = alerts = 0
        typos: dict[str, list[bool]] = defaultdict(list)
        alerted: Counter[str] = Counter()
        by_action: Counter[str] = Counter()  # of the alerted legitimate recipients
        pairs: set[tuple[str, str]] = set()  # (sender, domain) of the alerts
        missed: list[list[str]] = []
        # Each slip (a sender and a typo domain) once, however often it was sent: caught
        # when every message of it was. A saved slip sent thirty times is one slip here.
        slips: dict[tuple[str, str], bool] = {}
        slip_known: dict[tuple[str, str], str] = {}  # what was known at its first message
        unanswered: Counter[str] = Counter()  # repeats without an answer, alerted or slips
        for number, (message, flags) in enumerate(zip(judged, alert, strict=True)):
            if all(typo is None for _, typo in message.recipients):
                legit += 1
                if any(flags):
                    alerts += 1
                    for position, ((address, _), flag) in enumerate(
                        zip(message.recipients, flags, strict=True)
                    ):
                        if flag:
                            domain = address.rpartition("@")[2]
                            alerted[domain] += 1
                            by_action[_action(answer[number][position])] += 1
                            pairs.add((message.sender, domain))
                            unanswered["alerts"] += (number, position) in repeats
            for position, ((_, typo), flag) in enumerate(
                zip(message.recipients, flags, strict=True)
            ):
                if typo is None:
                    continue
                typos[typo.cls].append(flag)
                slip = (message.sender, typo.domain)
                slips[slip] = slips.get(slip, True) and flag
                slip_known.setdefault(slip, knowledge[number, position])
                unanswered["typos"] += (number, position) in repeats
                if not flag:
                    missed.append([typo.domain, typo.intended, typo.cls])
        by_kind: Counter[str] = Counter()
        for domain, count in alerted.items():
            by_kind[kind_of.get(domain, "other")] += count
        result["runs"][name] = {
            "legitimate_messages": legit,
            "alerts": alerts,
            "alerts_per_10k": 10_000 * alerts / legit if legit else float("nan"),
            "typo_messages": sum(len(v) for v in typos.values()),
            "typos_caught": sum(sum(v) for v in typos.values()),
            "slips": len(slips),
            "slips_caught": sum(slips.values()),
            "by_class": {cls: [sum(v), len(v)] for cls, v in sorted(typos.items())},
            # Slips by what was known of their intended domain: [caught, slips].
            "slips_by_knowledge": {
                level: [
                    sum(caught for slip, caught in slips.items() if slip_known[slip] == level),
                    sum(known == level for known in slip_known.values()),
                ]
                for level in KNOWLEDGE
            },
            "alerted_domains": alerted.most_common(),
            # Of the alerted recipients: how many were to a domain delivered to in the
            # learned log (the rest were first written to after it), and how many distinct
            # (sender, domain) pairs they come from (the rest are the same sender again).
            "alerted_in_log": sum(n for d, n in alerted.items() if delivered[d]),
            "alerted_recipients": sum(alerted.values()),
            "alerted_pairs": len(pairs),
            "alerted_by_kind": dict(by_kind),
            "alerted_by_action": dict(by_action),
            # ... of them, and of the typo messages: to a domain the sender had written to
            # before and that never answered (unanswered_repeats)
            "alerted_unanswered_repeats": unanswered["alerts"],
            "typo_unanswered_repeats": unanswered["typos"],
            "missed": missed,
            "typo_domains_learned_by_end": learned_by_end[name],
        }
    console.print(
        f"[dim]seed {seed}: {result['messages']:,} messages, {result['judged_requests']:,} "
        f"recipients and "
        f"{result['replies_in_judged_days']:,} replies judged twice at "
        f"{result['requests_per_second']:,.0f}/s, "
        f"{result['seconds']:.0f} s[/]"
    )
    return result


def _action(answer: str) -> str:
    """The action a policy answer takes, in the words of typogate's configuration."""
    word = answer.split(maxsplit=1)[0]
    if word == "PREPEND":
        return "warn"  # delivered, with an X-Typogate header
    if word == "HOLD":
        return "hold"
    return "reject" if word.startswith("5") else "defer"


def _pct(hits: int, total: int) -> str:
    return f"{100 * hits / total:.1f}%" if total else "—"


def summary(results: list[dict]) -> dict:
    """The seeds pooled, per run."""
    runs: dict[str, dict] = {}
    for name in results[0]["runs"]:
        per_seed = [r["runs"][name] for r in results]
        legit = sum(r["legitimate_messages"] for r in per_seed)
        alerts = sum(r["alerts"] for r in per_seed)
        by_class: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in per_seed:
            for cls, (hit, total) in r["by_class"].items():
                by_class[cls][0] += hit
                by_class[cls][1] += total
        by_knowledge = {
            level: [sum(r["slips_by_knowledge"][level][i] for r in per_seed) for i in (0, 1)]
            for level in KNOWLEDGE
        }
        alerted: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        by_action: Counter[str] = Counter()
        for r in per_seed:
            alerted.update(dict(r["alerted_domains"]))
            by_kind.update(r["alerted_by_kind"])
            by_action.update(r["alerted_by_action"])
        runs[name] = {
            "legitimate_messages": legit,
            "alerts": alerts,  # legitimate messages with an alert (one may alert two recipients)
            "alerts_per_10k": 10_000 * alerts / legit,
            "alerts_per_10k_by_seed": [round(r["alerts_per_10k"], 2) for r in per_seed],
            "typo_messages": sum(r["typo_messages"] for r in per_seed),
            "typos_caught": sum(r["typos_caught"] for r in per_seed),
            "slips": sum(r["slips"] for r in per_seed),
            "slips_caught": sum(r["slips_caught"] for r in per_seed),
            "caught_by_seed": [
                round(r["typos_caught"] / r["typo_messages"], 3) if r["typo_messages"] else None
                for r in per_seed
            ],
            "by_class": dict(sorted(by_class.items())),
            "slips_by_knowledge": by_knowledge,
            "alerted_domains": alerted.most_common(15),
            "alerted_in_log": sum(r["alerted_in_log"] for r in per_seed),
            "alerted_recipients": sum(r["alerted_recipients"] for r in per_seed),
            "alerted_pairs": sum(r["alerted_pairs"] for r in per_seed),
            "alerted_by_kind": dict(by_kind),
            "alerted_by_action": dict(by_action),
            "alerted_unanswered_repeats": sum(r["alerted_unanswered_repeats"] for r in per_seed),
            "typo_unanswered_repeats": sum(r["typo_unanswered_repeats"] for r in per_seed),
            "missed": sorted({tuple(m) for r in per_seed for m in r["missed"]}),
            "typo_domains_learned_by_end": sum(
                len(r["typo_domains_learned_by_end"]) for r in per_seed
            ),
            "learned_by_end_examples": sorted(
                {d for r in per_seed for d in r["typo_domains_learned_by_end"]}
            )[:20],
        }
    learned = sorted({d for r in results for d in r["typo_domains_learned"]})
    books: Counter[str] = Counter()
    for r in results:
        books.update(r["address_books"])
    humans: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        for name, counts in r["humans"].items():
            humans[name].update(counts)
    return {
        "seeds": [r["seed"] for r in results],
        "humans": {name: dict(counts) for name, counts in humans.items()},
        "typo_domains_in_log": sum(r["typo_domains_in_log"] for r in results),
        "typo_domains_delivered_3": sum(r["typo_domains_delivered_3"] for r in results),
        "typo_domains_learned": sum(len(r["typo_domains_learned"]) for r in results),
        "typo_domains_in_month": sum(r["typo_domains_in_month"] for r in results),
        "learned_examples": learned[:20],
        "new_people": results[0]["new_people"],
        "settings": results[0]["settings"],
        "address_books": {
            **books,
            # of the judged days' legitimate recipients, the share whose address the sender
            # had written to earlier in the month; of its typo recipients, the share whose
            # intended address (the person at the domain meant) it had
            "legitimate_known_share": books["legitimate_known"] / books["legitimate"]
            if books["legitimate"]
            else None,
            "typos_intended_known_share": books["typos_intended_known"] / books["typos"]
            if books["typos"]
            else None,
            "people_per_sender": books["people"] / (SENDERS * len(results)),
        },
        "runs": runs,
    }


def show(console: Console, total: dict, results: list[dict]) -> None:
    names = list(total["runs"])
    runs = [total["runs"][n] for n in names]
    messages = sum(r["messages"] for r in results)
    table = Table(
        title=f"a month of {ORG}'s mail, {len(results)} seed(s): {messages:,} messages, "
        f"days 1-{LEARNED_DAYS} learned, days {LEARNED_DAYS + 1}-{DAYS} judged"
        + (f", with {', '.join(total['settings'])}" if total["settings"] else "")
    )
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")
    table.add_row("legitimate messages judged", *(f"{r['legitimate_messages']:,}" for r in runs))
    table.add_row(
        "alerts per 10,000 legitimate",
        *(
            f"{r['alerts_per_10k']:.2f} ({', '.join(map(str, r['alerts_per_10k_by_seed']))})"
            for r in runs
        ),
    )
    table.add_row(
        "  alerted messages (their alerted recipients, from sender-domain pairs)",
        *(f"{r['alerts']:,} ({r['alerted_recipients']:,}, {r['alerted_pairs']:,})" for r in runs),
    )
    table.add_row(
        "typo messages caught",
        *(f"{_pct(r['typos_caught'], r['typo_messages'])} of {r['typo_messages']}" for r in runs),
    )
    table.add_row(
        "  slips caught (a sender and a typo domain, every message of it)",
        *(f"{_pct(r['slips_caught'], r['slips'])} of {r['slips']}" for r in runs),
    )
    table.add_row(
        "  ... by who had written to the domain meant, before the slip", *("" for _ in runs)
    )
    for level in KNOWLEDGE:
        table.add_row(
            f"    {level}",
            *(
                f"{_pct(*r['slips_by_knowledge'][level])} of {r['slips_by_knowledge'][level][1]}"
                for r in runs
            ),
        )
    classes = sorted({cls for r in runs for cls in r["by_class"]})
    for cls in classes:
        table.add_row(
            f"  {cls}",
            *(
                f"{_pct(*r['by_class'].get(cls, [0, 0]))} of {r['by_class'].get(cls, [0, 0])[1]}"
                for r in runs
            ),
        )
    table.add_row(
        "typo domains learned as correspondents",
        *(
            "— (no history)"
            if name == "without history"
            else f"{total['typo_domains_learned']} of {total['typo_domains_in_log']} in the "
            f"log ({total['typo_domains_delivered_3']} delivered 3+ times)"
            for name in names
        ),
    )
    table.add_row(
        "... and at the month's end, with what the gateway learned while running",
        *(
            f"{r['typo_domains_learned_by_end']} of {total['typo_domains_in_month']} in the month"
            for r in runs
        ),
    )
    console.print(table)
    books = total["address_books"]
    console.print(
        f"address books (after n messages to a domain, a sender's next goes to someone new "
        f"with probability α/(n+α), α = {total['new_people']:g}, an assumption: --new-people): "
        "in the judged "
        f"days, {_pct(books['legitimate_known'], books['legitimate'])} of "
        f"{books['legitimate']:,} legitimate recipients were an address the sender had "
        f"written to earlier in the month, and "
        f"{_pct(books['typos_intended_known'], books['typos'])} of {books['typos']:,} typo "
        f"recipients were meant for one; {books['people_per_sender']:.0f} people per sender "
        f"in the month, {_pct(books['local_parts_at_several_domains'], books['local_parts'])} "
        "of a sender's local parts at two domains or more."
    )
    for name, run in zip(names, runs, strict=True):
        if run["learned_by_end_examples"]:
            console.print(
                f"learned while running ({name}): " + ", ".join(run["learned_by_end_examples"])
            )
    if total["learned_examples"]:
        console.print("learned typo domains: " + ", ".join(total["learned_examples"]))
    for name, said in total["humans"].items():
        console.print(
            f"[bold]{name}[/]: {said.get('warnings', 0):,} warnings, "
            f"{said.get('links', 0):,} of their notices with a confirm link, "
            f"{said.get('confirmed', 0):,} confirmed by a sender whose address was right; "
            f"{said.get('slips_with_link', 0):,} warned slips had a link too (a careless "
            "sender could have confirmed them)"
            + (
                f"; {said['notices_not_found']:,} notices not found"
                if said.get("notices_not_found")
                else ""
            )
            + (
                f"; before the first judged day the admin allowed "
                f"{said.get('refused_rules', 0):,} of the (domain, sender) pairs learn refused "
                f"for their senders and left {said.get('refused_with_a_slip', 0):,} with a "
                f"slip; on day {REVIEW_DAY}, {said.get('rules', 0):,} of the pairs alerted "
                f"and left {said.get('pairs_with_a_slip', 0):,} with a slip. Had every sender "
                f"learn named said yes, its rules would have let "
                f"{said.get('typos_a_yes_lets_through', 0):,} of the judged messages to typo "
                f"domains through, {said.get('typos_a_yes_lets_through_saved', 0):,} of them "
                "to a slip its sender had delivered to twice or more in the log"
                if name == REVIEWED
                else ""
            )
            + "."
        )
    for name, run in zip(names, runs, strict=True):
        console.print(
            f"[bold]{name}[/]: {run['alerted_recipients']:,} alerted legitimate recipients "
            f"from {run['alerted_pairs']:,} (sender, domain) pairs; "
            f"{run['alerted_in_log']:,} to domains delivered to in the learned log, the rest "
            "first written to after it. By the kind of list they came from: "
            + ", ".join(f"{k} {n}" for k, n in run["alerted_by_kind"].items())
            + ". By action: "
            + ", ".join(f"{a} {n}" for a, n in sorted(run["alerted_by_action"].items()))
            + ". Most alerted: "
            + ", ".join(f"{d} ({n})" for d, n in run["alerted_domains"][:10])
            + f". {run['alerted_unanswered_repeats']:,} of the alerted recipients, and "
            f"{run['typo_unanswered_repeats']:,} of the {run['typo_messages']:,} typo "
            "messages, went to a domain the sender had written to before and that never "
            "answered: the same evidence, which deliveries alone may not turn into a "
            "correspondent."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="months simulated (default 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--in-order",
        action="store_true",
        help="one policy connection, every request answered before the next: slower, and "
        "the same figures in every run (with 8, a reply may be heard before or after the "
        "sender's next message, and a seed moves by a few alerts run to run)",
    )
    parser.add_argument(
        "--new-people",
        type=float,
        default=NEW_PEOPLE,
        metavar="ALPHA",
        help="how readily a sender writes to someone new at a domain: after n messages there, "
        "the next goes to a new person with probability ALPHA/(n+ALPHA), else to someone it "
        "wrote to there before, in proportion to the messages each got (a Chinese restaurant "
        f"process; default {NEW_PEOPLE:g}, an assumption, no measured figure for mail being "
        "at hand; 0: one person per domain)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a typogate setting (docs/configuration.md) for every gateway of the month and "
        "for its learning, VALUE in TOML; repeatable. The default configuration otherwise: "
        "--set learning.relationship_mails=1 measures a sender's single delivery counted as "
        "its relationship",
    )
    args = parser.parse_args()
    settings: Settings = {}
    try:
        for text in args.set:
            section, key, value = setting(text)
            settings.setdefault(section, {})[key] = value
        config_text(service_settings(0, 0, "http://127.0.0.1:0"), settings)
    except ValueError as error:
        parser.error(f"--set: {error}")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if not (0 <= args.new_people < math.inf):
        parser.error("--new-people must be a number, 0 or more")
    console = Console(stderr=args.json, width=120)
    kinds, real = universe(install_lists(console))
    connections = 1 if args.in_order else CONNECTIONS
    results = [
        run_seed(seed, kinds, real, console, settings, connections, args.new_people)
        for seed in range(1, args.seeds + 1)
    ]
    total = summary(results)
    OUT.mkdir(exist_ok=True)
    document = {"summary": total, "seeds": results}
    (OUT / "month.json").write_text(json.dumps(document, indent=2))
    if args.json:
        print(json.dumps(document, indent=2))
        return
    show(console, total, results)


if __name__ == "__main__":
    stop_servers_on_sigterm()
    main()
