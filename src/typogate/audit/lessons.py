"""What a Postfix log teaches about relationships, in both directions.

Outbound: a message from one of our senders (``qmgr ... from=<alice@example.org>``) delivered
by the ``smtp`` client to an outside domain (``smtp ... to=<bob@partner.example>,
status=sent``) is a delivery to that domain. Inbound: a message from an outside sender
delivered here by ``local``, ``virtual``, ``lmtp`` or ``pipe`` is mail received from the
sender's domain by its local recipient. Deliveries prove little (years of mail to army.ml
were slips); mail received from a domain proves it real, but from a likely slip only as a
reply, to one of ours who delivered mail to it (:meth:`Lessons.received`): its owner
writing to us unasked proves nothing.

One pass over a chunk, linear in its size: every ``from=``/``to=`` line is matched once, and
the sender of each queue id is remembered until its deliveries are read.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from typogate.audit.postfix_log import ADDRESS, month_of
from typogate.audit.sources import AuditInputError, Overlong, Part, blocks
from typogate.domains import InvalidAddress, parse_domain
from typogate.policy.relationships import ORGANISATION, levels

# A sender or delivery line of a queued message: agent, queue id, and from= or to= with the
# delivery's status. Anchored at the start of a line, with a bounded time stamp and host
# before it, so a hostile line that repeats "postfix/smtp[1]: Q: to=<...>" is scanned once.
_LINE = re.compile(
    rb"^(?P<stamp>[A-Z][a-z]{2} [ \d]\d|\d{4}-\d\d-\d\d)?"  # its day, syslog's or ISO's
    rb"[^\n]{0,120}? postfix(?:-[\w-]+)?/(?:[\w-]+/)*(?P<agent>[\w-]+)\[\d+\]: "
    rb"(?P<qid>[0-9A-Za-z]+): (?:from=<(?P<sender>" + ADDRESS + rb")>"
    rb"|to=<(?P<recipient>" + ADDRESS + rb")>"
    rb"[^\n]*?, status=(?P<status>[a-z]+))",
    re.MULTILINE,
)
_OUTBOUND = frozenset({b"smtp", b"relay"})
_INBOUND = frozenset({b"local", b"virtual", b"lmtp", b"pipe"})


@dataclass
class Lessons:
    """Evidence per (our party, outside domain): deliveries out at every level (organisation
    ``*``, our party's domain, its address), and messages in per local recipient."""

    sent: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    heard: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    deliveries: int = 0
    messages_in: int = 0
    judged_out: int = 0  # deliveries left out: a gateway judged them (:class:`Judged`)
    judged_in: int = 0  # messages received left out, the same

    def merge(self, other: Lessons) -> None:
        """Add another chunk's lessons."""
        for key, count in other.sent.items():
            self.sent[key] += count
        for key, count in other.heard.items():
            self.heard[key] += count
        self.deliveries += other.deliveries
        self.messages_in += other.messages_in
        self.judged_out += other.judged_out
        self.judged_in += other.judged_in

    def delivered(self) -> dict[tuple[str, str], int]:
        """The deliveries that teach: those to a domain name. Behind a relay host, Postfix
        logs ``status=sent`` for whatever follows the @-sign (the relay took it), and
        that is nobody's correspondent."""
        named = {domain: _domain_name(domain) for _, domain in self.sent}
        return {key: count for key, count in self.sent.items() if named[key[1]]}

    def received(
        self, slip_like: Callable[[str], bool], delivered: dict[tuple[str, str], int]
    ) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        """The mail received that counts, at every level: from a domain that is no likely
        slip (``slip_like``), or in reply, to one of ours who delivered mail to the domain
        (``delivered``, as :meth:`delivered` gives it); and per domain the messages that
        do not count (a likely slip writing unasked)."""
        counted: dict[tuple[str, str], int] = defaultdict(int)
        unasked: dict[str, int] = defaultdict(int)
        for (recipient, domain), count in self.heard.items():
            party = None if recipient == ORGANISATION else recipient  # too long to be ours
            if (party and delivered.get((party, domain))) or not slip_like(domain):
                for level in levels(party):
                    counted[(level, domain)] += count
            else:
                unasked[domain] += count
        return dict(counted), dict(unasked)

    def domains(self, received: dict[tuple[str, str], int]) -> dict[str, tuple[int, int]]:
        """Per outside domain, for the whole organisation: (deliveries, messages received
        that count, as :meth:`received` gives them)."""
        found: dict[str, tuple[int, int]] = {}
        for (party, domain), count in self.sent.items():
            if party == "*":
                found[domain] = (count, found.get(domain, (0, 0))[1])
        for (party, domain), count in received.items():
            if party == "*":
                found[domain] = (found.get(domain, (0, 0))[0], count)
        return found

    def writers(self) -> dict[str, dict[str, int]]:
        """Per outside domain, our senders (addresses) who delivered mail to it, and how
        many messages each: whom to ask whether a domain typogate refused is meant."""
        found: dict[str, dict[str, int]] = defaultdict(dict)
        for (party, domain), count in self.sent.items():
            if "@" in party:
                found[domain][party] = count
        return dict(found)


@dataclass
class Judged:
    """Which lines of a log a gateway judged, and learned from as it passed: those dated
    on or after ``since``, the first day of the log's calendar that holds a moment of the
    day it first judged mail into the store (:func:`local_day_of`). A syslog time stamp
    has no year: the file's, ``year``, written in month ``written`` (a later month
    is of the year before). A line whose date cannot be read is not left out."""

    since: date
    year: int
    written: int
    _days: dict[bytes, bool] = field(default_factory=dict)

    def __call__(self, stamp: bytes | None) -> bool:
        if stamp is None:
            return False
        judged = self._days.get(stamp)
        if judged is None:
            text = stamp.decode("ascii")
            try:
                if text[:4].isdigit():
                    day = date.fromisoformat(text)
                else:
                    day = date.fromisoformat(
                        f"{month_of(text, self.year, self.written)}-{int(text[4:]):02d}"
                    )
            except ValueError:
                day = None
            judged = self._days[stamp] = day is not None and day >= self.since
        return judged


def local_day_of(day: date) -> date:
    """The first day of this machine's calendar, the one a syslog time stamp is written in,
    that holds a moment of the UTC ``day``: from it on, a line may be of mail judged that
    day. West of UTC, the day before it; what that costs is some of the mail before the
    gateway came, never a line counted twice."""
    return datetime.combine(day, time(), UTC).astimezone().date()


def read_part(part: Part, judged_since: date | None = None) -> Lessons:
    """The relationships one partition of a Postfix log shows, read a block at a time (the
    sender of a queue id is remembered from one block to the next); without the lines
    dated ``judged_since`` or later, which a gateway learned from as it passed them.
    Raises :class:`AuditInputError` for a file that breaks off."""
    lessons = Lessons()
    senders: dict[bytes, bytes] = {}
    judged = None if judged_since is None else Judged(judged_since, part.year, part.month)
    try:
        for block in blocks(part):
            if not isinstance(block, Overlong):
                lessons.merge(read(block, senders, judged))
    except (OSError, EOFError, zlib.error) as error:
        raise AuditInputError(f"{part.path}: cannot read on: {error}") from None
    return lessons


def read(
    chunk: bytes,
    senders: dict[bytes, bytes] | None = None,
    judged: Callable[[bytes | None], bool] | None = None,
) -> Lessons:
    """The relationships one chunk of whole Postfix log lines shows; ``senders`` (queue id
    -> sender) carries what earlier chunks of the same file said; a line ``judged`` (by
    its time stamp) is counted as left out, and teaches nothing."""
    lessons = Lessons()
    senders = {} if senders is None else senders
    for line in _LINE.finditer(chunk):
        qid = line["qid"]
        if line["sender"] is not None:
            senders[qid] = line["sender"]
            continue
        if line["status"] != b"sent":
            continue
        agent, recipient = line["agent"], line["recipient"].lower()
        sender = senders.get(qid, b"").lower()
        left_out = judged is not None and judged(line["stamp"])
        if agent in _OUTBOUND:
            domain = recipient.rpartition(b"@")[2].decode("utf-8", "replace")
            if domain and left_out:
                lessons.judged_out += 1
            elif domain:
                lessons.deliveries += 1
                party = sender.decode("utf-8", "replace") or None
                for level in levels(party):
                    lessons.sent[(level, domain)] += 1
        elif agent in _INBOUND and b"@" in sender and left_out:
            lessons.judged_in += 1
        elif agent in _INBOUND and b"@" in sender:
            domain = sender.rpartition(b"@")[2].decode("utf-8", "replace")
            lessons.messages_in += 1
            # Keyed by the address (the organisation for one too long to be an address).
            lessons.heard[(levels(recipient.decode("utf-8", "replace"))[-1], domain)] += 1
    return lessons


def _domain_name(text: str) -> bool:
    try:
        parse_domain(text)
    except InvalidAddress:
        return False
    return True
