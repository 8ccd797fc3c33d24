"""Who writes to whom: the organisation's learned relationships, at three levels.

A relationship ties a party of the organisation (the whole organisation ``*``, a sender
domain, a sender address) to an outside domain, with the kinds of evidence seen: mail
delivered to the domain, mail received from it, held messages to it that a sender released.
Evidence fades: a relationship's weight halves for every ``half_life`` without mail, so a
domain written to years ago stops protecting its near-twins, and stops counting as known.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from typogate.domains import internal_form, writable_form
from typogate.vocabulary import Evidence

log = logging.getLogger(__name__)

ORGANISATION = "*"
_FULL_DAY = 86400.0
_LONGEST_PARTY = 320


def party_name(party: str) -> str:
    """The name a party's relationships are kept under: lower-cased, its local part as a
    policy service hears it, so that ``"Sue Doe"@example.org`` (as the milter and a log
    show her) and ``sue doe@example.org`` (as a policy service does) are one sender; a byte
    that was not UTF-8, or a NUL, is U+FFFD, as the store keeps it."""
    party = writable_form(party.lower())
    # Checked here, not only in internal_form: levels names a party for every piece of
    # evidence, and almost none is quoted.
    return internal_form(party) if party.startswith('"') else party


def levels(party: str | None) -> list[str]:
    """The three levels a party's evidence counts at: the organisation, then the party's
    domain and address (a bare domain is its own domain). A party longer than an address
    can be (RFC 5321: 256) is no party of ours: the organisation only."""
    if not party or len(party) > _LONGEST_PARTY:
        return [ORGANISATION]
    party = party_name(party)
    if "@" in party:
        return [ORGANISATION, party.rpartition("@")[2], party]
    return [ORGANISATION, party]


class Related(Protocol):
    """A relationship as the store keeps it (``typogate.store.records.Correspondent``)."""

    @property
    def sender(self) -> str: ...
    @property
    def recipient_domain(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def received(self) -> int: ...
    @property
    def released(self) -> int: ...
    @property
    def last_seen(self) -> datetime: ...


@dataclass(slots=True)
class Tie:
    """The evidence between one party and one outside domain."""

    sent: int = 0
    received: int = 0
    released: int = 0
    last_seen: float = 0.0  # seconds since the epoch

    def fade(self, now: float, half_life: float) -> float:
        """How much of the evidence still counts: all of it for a day after the last mail,
        then half as much for every ``half_life`` (seconds) more."""
        age = max(0.0, now - self.last_seen - _FULL_DAY)
        return math.pow(0.5, age / half_life)

    @property
    def outbound_only(self) -> bool:
        """Only deliveries to the domain: no proof that it is real (slips are delivered too)."""
        return not (self.received or self.released)


class Relationships:
    """The relationships a Guard decides with: loaded from the store, then kept current by
    the mail that flows (:meth:`observe`) and by what other processes stored (:meth:`put`).

    Memory grows with the distinct (party, domain) pairs of the organisation's mail: three
    entries per pair of sender address and recipient domain, at most, and never more than
    ``max_ties`` in all (``limits.learned_ties``): past that, mail flowing adds evidence to
    the relationships already kept but makes no new ones (a flood of made-up senders or
    domains cannot grow it), and it says so once.
    """

    def __init__(self, half_life: float, max_ties: int = 1_000_000) -> None:
        self.half_life = half_life
        self.max_ties = max_ties
        self._ties: dict[str, dict[str, Tie]] = {}
        # How many sender addresses have a relationship with each outside domain, how many
        # of them heard from it or released mail to it, and the organisation's own domains
        # that have any.
        self._senders: dict[str, int] = {}
        self._sole_sender: dict[str, str] = {}  # for a domain only one of ours writes to
        self._vouching: dict[str, int] = {}
        self._own_domains: set[str] = set()
        self._count = 0
        self._full = False  # said once

    def __len__(self) -> int:
        return self._count

    def _tie(self, party: str, domain: str) -> Tie | None:
        """The tie to count on, made when there is room; None when full."""
        ties = self._ties.get(party)
        tie = None if ties is None else ties.get(domain)
        if tie is not None:
            return tie
        if self._count >= self.max_ties:
            if not self._full:
                self._full = True
                log.warning(
                    "learning: %d relationships kept in memory (limits.learned_ties): "
                    "new ones are not kept until the next start",
                    self.max_ties,
                )
            return None
        self._count += 1
        if "@" in party:
            senders = self._senders[domain] = self._senders.get(domain, 0) + 1
            if senders == 1:
                self._sole_sender[domain] = party
            else:
                self._sole_sender.pop(domain, None)
        elif party != ORGANISATION:
            self._own_domains.add(party)
        tie = self._ties.setdefault(party, {})[domain] = Tie()
        return tie

    def put(
        self,
        party: str,
        domain: str,
        *,
        sent: int = 0,
        received: int = 0,
        released: int = 0,
        last_seen: float | None = None,
    ) -> Tie:
        """Take in one relationship as the store has it (absolute counts, not additions).

        Counts only grow, so each is raised to the stored one and never lowered: the store
        can be behind this process (its writer stores what was learned here every ten
        seconds at most), and a row read back before it caught up must not take back an
        answer heard since.
        """
        kept = self._tie(party, domain)
        tie = Tie() if kept is None else kept
        received, released = max(tie.received, received), max(tie.released, released)
        if kept is not None and "@" in party:
            self._vouch(domain, tie, bool(received or released))
        tie.sent, tie.received, tie.released = max(tie.sent, sent), received, released
        seen = time.time() if last_seen is None else last_seen
        tie.last_seen = max(tie.last_seen, seen)
        return tie

    def observe(self, party: str | None, domain: str, evidence: Evidence, count: int = 1) -> Tie:
        """Add evidence seen now for ``party`` (an address, or None) at all three levels:
        the organisation, the party's domain and its address. Returns the organisation's
        tie with ``domain``."""
        now = time.time()
        organisation = Tie()
        for name in levels(party):
            tie = self._tie(name, domain)
            if tie is None:
                tie = Tie()
            elif "@" in name and evidence is not Evidence.SENT:
                self._vouch(domain, tie, True)
            if evidence is Evidence.SENT:
                tie.sent += count
            elif evidence is Evidence.RECEIVED:
                tie.received += count
            elif evidence is Evidence.RELEASED:
                tie.released += count
            tie.last_seen = now
            if name == ORGANISATION:
                organisation = tie
        return organisation

    def _vouch(self, domain: str, tie: Tie, vouches: bool) -> None:
        """Count a sender address in or out of those who heard from ``domain`` or released
        mail to it, as its ``tie`` is about to change to ``vouches``."""
        if vouches != (not tie.outbound_only):
            self._vouching[domain] = self._vouching.get(domain, 0) + (1 if vouches else -1)

    def vouching(self, domain: str) -> int:
        """How many of the organisation's sender addresses heard from ``domain`` or released
        mail held for it: how many of ours can tell it is real, not how often."""
        return self._vouching.get(domain, 0)

    def tie(self, party: str, domain: str) -> Tie | None:
        """The relationship of ``party`` (``*``, a domain, an address) with ``domain``."""
        ties = self._ties.get(party)
        return None if ties is None else ties.get(domain)

    def of_sender(self, sender: str) -> tuple[dict[str, Tie], dict[str, Tie]]:
        """A sender's own relationships and its domain's: ``(address, domain)`` maps of
        outside domain to tie (empty when none)."""
        sender = party_name(sender)
        return (
            self._ties.get(sender, {}),
            self._ties.get(sender.rpartition("@")[2], {}) if "@" in sender else {},
        )

    def senders(self, domain: str) -> int:
        """How many of the organisation's sender addresses have a relationship with
        ``domain``: how widely it is written to, not how much."""
        return self._senders.get(domain, 0)

    def sole_sender(self, domain: str) -> str | None:
        """The one sender address of ours that has a relationship with ``domain``, when only
        one has."""
        return self._sole_sender.get(domain)

    def own_domains(self) -> int:
        """How many of the organisation's own domains have relationships: with one, its
        domain's relationships are the organisation's."""
        return len(self._own_domains)

    def organisation(self) -> dict[str, Tie]:
        """Every outside domain the organisation has a relationship with."""
        return self._ties.get(ORGANISATION, {})
