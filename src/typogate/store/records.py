"""What the store hands back: typed, read-only records, one per kind of row people read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from typogate.config import Rule
from typogate.vocabulary import Action, HoldAction, HoldSource, HoldState, Mode, SenderSaid


@dataclass(frozen=True, slots=True)
class HoldRecord:
    """A held message as the store keeps it."""

    hold_id: str
    time: datetime
    source: HoldSource
    sender: str | None
    recipients: list[str]
    reasons: list[str]
    suggestions: list[str | None]
    queue_id: str | None
    message_path: str | None
    state: HoldState
    subject: str | None = None  # None: not read yet; "": the message has none
    written: datetime | None = None  # its Date header
    all_recipients: list[str] = field(default_factory=list)  # []: not read yet

    @property
    def described(self) -> bool:
        """Whether subject, date and recipients were read from the message."""
        return self.subject is not None


@dataclass(frozen=True, slots=True)
class HoldIntent:
    """An action on a held message, recorded before Postfix is asked to carry it out: the
    queue id it acts on, who asked and why (for the audit trail), and the process that
    carries it out (``host:pid:thread``), to tell one in flight from one a crash left."""

    hold_id: str
    action: HoldAction
    queue_id: str
    actor: str
    why: str
    time: datetime
    owner: str


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One line of the hold actions' audit trail: who did what to which hold, and why."""

    hold_id: str
    action: HoldAction
    actor: str
    why: str
    outcome: str
    time: datetime


@dataclass(frozen=True, slots=True)
class SenderWord:
    """What a sender said with a link of its notice: release this held message
    (``hold_id``), or, with none, these questioned recipients are right (a confirmation,
    which ends that sender's warnings about their domains)."""

    time: datetime
    sender: str
    recipients: list[str]
    hold_id: str | None  # None: a confirmation

    @property
    def said(self) -> SenderSaid:
        """Release or confirm."""
        return SenderSaid.CONFIRM if self.hold_id is None else SenderSaid.RELEASE

    @property
    def domains(self) -> list[str]:
        """The recipients' domains, each once, in their order."""
        return list(dict.fromkeys(r.rpartition("@")[2].lower() for r in self.recipients))


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One verdict as it happened in the mail flow (alerts; allowed ones only when kept)."""

    id: int
    time: datetime
    recipient: str
    domain: str
    action: Action
    reason: str
    suggestion: str | None
    score: float
    rule: str
    sender: str | None
    adapter: str
    mode: Mode
    queue_id: str | None


@dataclass(frozen=True, slots=True)
class Correspondent:
    """A relationship between our side (``sender``: an address, a domain, or ``*`` for the
    organisation) and an outside domain: deliveries to it (``count``), messages received from
    it, held messages to it that a sender released; when first and last seen."""

    sender: str
    recipient_domain: str
    count: int
    first_seen: datetime
    last_seen: datetime
    received: int = 0
    released: int = 0


@dataclass(frozen=True, slots=True)
class StoredRule:
    """A rule written in the web interface, and who last wrote it; ``problem`` says why a
    rule stored before the checks that now refuse it is not used."""

    id: int
    rule: Rule
    author: str
    updated: datetime
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class DayCounts:
    """Verdicts of one day (UTC), by action."""

    day: str
    allow: int = 0
    warn: int = 0
    hold: int = 0
    reject: int = 0


@dataclass(frozen=True, slots=True)
class TopDomain:
    """A suspected typo domain, what it was taken for, and how often it was caught."""

    domain: str
    suggestion: str
    count: int
    senders: int


@dataclass(frozen=True, slots=True)
class TopSender:
    """A sender whose mail was caught, and how often."""

    sender: str
    count: int
    domains: int


@dataclass(frozen=True, slots=True)
class TopPair:
    """One sender's mail to one suspected typo domain, what it was taken for, how often it
    was caught: what an admin reviews (a real correspondent of that sender, or a habit)."""

    sender: str
    domain: str
    suggestion: str
    count: int
    # Messages the sender released to the domain, or warnings about it it confirmed: its
    # own word that the domain is meant (its later mail there is no longer questioned,
    # unless a release proves nothing there: a look-alike anyone can register, where
    # typogate stops the mail).
    released: int = 0


@dataclass(frozen=True, slots=True)
class LearnRefusal:
    """A domain ``typogate learn`` did not make a correspondent, and one of our senders who
    wrote there: whom the admin's first review asks whether the domain is meant."""

    domain: str
    sender: str
    deliveries: int  # this sender's, in the logs learned
    suggestion: str | None  # the domain typogate reads in it, if one
    why: str
    time: datetime  # when learn said so


@dataclass(frozen=True, slots=True)
class SeenLookAlike:
    """A look-alike as a run saw it; ``domain`` in A-label form, ``display`` in Unicode.

    ``state`` and ``change`` are the monitor's words (``mx``, ``new``); ``probe`` is the
    SMTP probe's answer, or None when it was not probed. ``run`` is the run's id.
    """

    domain: str
    display: str
    intended: str
    probability: float
    rank: int
    state: str
    mx: tuple[str, ...]
    spf: bool
    dmarc: bool
    probe: str | None
    change: str
    run: int = 0


@dataclass(frozen=True, slots=True)
class MonitorRunRecord:
    """One run: when, how many protected domains and look-alikes, how many changes."""

    id: int
    started: datetime
    finished: datetime
    protected: int
    asked: int
    changes: int


@dataclass(frozen=True, slots=True)
class WatchedDomain:
    """A protected domain as the monitor last saw its look-alikes: the newest run that kept
    one of them (``run``, finished at ``seen``), how many exist by their latest observation,
    and how many of those take mail (``mx``, ``a_only``)."""

    intended: str
    run: int
    seen: datetime
    existing: int
    accepting: int


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC time: SQLite hands datetimes back without their zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
