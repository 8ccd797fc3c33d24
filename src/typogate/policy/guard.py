"""The Guard: one recipient in, one Verdict out.

It reads where an address leads (:func:`read_destination`), asks the judge for the verdict
on that domain (``judge.py``: the noisy-channel decision), weighs it with the sender's own
relationships (``sender.py``), and learns the organisation's correspondents as evidence
comes in (``learning.py``).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from typogate.config import Config, Rule
from typogate.domains import (
    Destination,
    InvalidAddress,
    Route,
    as_seen,
    host_name,
    parse_domain,
    read_destination,
    shows_an_at_sign,
)
from typogate.errors import ConfigError
from typogate.policy import verdict as reasons
from typogate.policy.index_cache import built_index
from typogate.policy.judge import SEEN_REAL, DomainJudge
from typogate.policy.kept import LearnedSet, learning_key
from typogate.policy.learning import Correspondents
from typogate.policy.lists import domain_lists
from typogate.policy.relationships import Related, Relationships
from typogate.policy.sender import for_sender, lifted_by_release
from typogate.policy.verdict import DomainVerdict, Verdict
from typogate.vocabulary import Action, Evidence, MailState, severity

# A dot-atom local part that cannot route on: no % (percent hack) and no ! (bang path).
_FAST_LOCAL = re.compile(r"[A-Za-z0-9#$&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9#$&'*+/=?^_`{|}~-]+)*")


class Guard:
    """Decides, for each recipient, whether its domain is a likely mistake.

    Build one per configuration (the index is built here, once) and call
    :meth:`evaluate` for each recipient; it is safe to share between threads.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        cache_size: int = 131_072,
        index_cache: Path | None = None,
    ) -> None:
        """Read ``config``'s lists and build the index; with ``index_cache``, a folder, read
        the index a Guard of the same lists kept there, or keep this one there
        (``policy/index_cache.py``). ``cache_size`` verdicts are kept in memory."""
        self.config = config if config is not None else Config()
        lists = domain_lists(self.config)
        with _no_cycle_collection():
            index, protected = built_index(self.config, lists, index_cache)
        self.profile = lists.profile
        self._lists = lists  # as given: part of the learning key (kept.py), made on demand
        self._rules: list[Rule] = []
        learning = self.config.learning
        self.relationships = Relationships(
            learning.half_life_days * 86400, self.config.limits.learned_ties
        )
        self._judge = DomainJudge(
            self.config,
            index,
            protected,
            self.relationships,
            cache_size=cache_size,
        )
        self._correspondents = Correspondents(self._judge)
        own = self.config.gateway.own_domains
        self._own = None if own is None else frozenset(_own_hosts(own))

    @property
    def domain_count(self) -> int:
        """How many protected and known domains the index holds."""
        return len(self._judge.index)

    def evaluate(
        self,
        recipient: str,
        sender: str | None = None,
        *,
        vouched: bool = True,
        shown_as: str | None = None,
    ) -> Verdict:
        """Judge where mail to one recipient address goes, for ``sender`` when given.

        The destination is read as Postfix delivers it (:func:`read_destination`: the host
        after the last @-sign as Postfix and UTS #46 map it, and where the percent hack or
        a bang path leads from the MTA's own domains), whatever the local part looks like.
        When the address may reach more than one destination, each is judged and the
        strictest verdict is returned.

        ``sender``'s own domain is allowed and its own relationships count when the caller
        ``vouched`` for it (it authenticated, or came from a trusted network; a sender
        given to the library or to ``typogate check`` is believed). A sender nobody vouched
        for, an envelope claim, can only make a verdict stricter.

        A domain written with a capital that passes for another letter (``aoI.com``, which
        goes to ``aoi.com``) is judged as the look-alike it is where its reader sees a
        domain this Guard protects or knows (``aol.com``). One in letters that all pass for
        Latin ones is judged as it reads (``аррӏе.co`` as ``apple.co``, a slip).

        ``shown_as`` is the display name the message shows the recipient under, where the
        caller knows it (the milter, from the To and Cc headers): one that names an address
        at a domain this Guard protects or knows, or at a slip of one, while the mail goes
        elsewhere, makes the look-alike (``"ceo@army.mil" <ceo@evil.com>``).

        Raises :class:`InvalidAddress` when no destination can be read from ``recipient``.
        """
        at = recipient.rfind("@")
        shown = shown_as if shown_as is not None and shows_an_at_sign(shown_as) else None
        if (
            0 < at <= 64
            and shown is None
            and recipient.isascii()
            and _FAST_LOCAL.fullmatch(recipient, 0, at)
        ):
            domain_text = recipient[at + 1 :]
            if self._own is None or host_name(domain_text) not in self._own:
                try:
                    judgement = self._judge.verdict(domain_text)
                except InvalidAddress:
                    pass  # an address literal or a bare host name: read below
                else:
                    if not domain_text.islower():  # lower case, nearly all: no call
                        judgement = self._as_seen(domain_text, judgement)
                    return Verdict(
                        recipient, for_sender(self._judge, judgement, sender, vouched=vouched)
                    )
        destination = read_destination(recipient, self._own)
        judged = [
            (
                reached,
                for_sender(
                    self._judge, self._judge_destination(reached, shown), sender, vouched=vouched
                ),
            )
            for reached in (destination, *destination.alternatives)
        ]
        reached, judgement = max(judged, key=lambda pair: severity(pair[1].action))
        return Verdict(reached.address, judgement)

    def judge_domain(self, domain: str) -> DomainVerdict:
        """Judge a bare domain (cached), or a bare host name that spells one this Guard
        knows without its dots or its suffix (``gmailcom``, ``gmail``), as
        :meth:`evaluate` judges it in an address. Raises :class:`InvalidAddress` for any
        other text that is no domain."""
        try:
            judgement = self._judge.verdict(domain)
        except InvalidAddress as error:
            try:
                slip = self._judge.host_verdict(host_name(domain))
            except InvalidAddress:
                slip = None
            if slip is None:
                raise error from None
            return slip
        return self._as_seen(domain, judgement)

    def _as_seen(self, written: str, judgement: DomainVerdict) -> DomainVerdict:
        """``judgement``, the model's pass for a domain, or the look-alike's verdict where
        ``written`` has a character that goes as another letter and reads, so, as a domain
        protected or known (only a warning where the domain it goes to is one too)."""
        if written.islower() and written.isascii():  # nearly all: nothing reads otherwise
            return judgement
        if judgement.reason != reasons.ALLOWED_UNLIKELY and judgement.reason not in SEEN_REAL:
            return judgement
        seen_text = as_seen(written)
        if seen_text is None:
            return judgement
        try:
            seen = self._judge.verdict(seen_text)
        except InvalidAddress:
            return judgement  # aoI.com (a comment): only a plain domain is read again
        domain = parse_domain(judgement.domain)
        # Only a real domain: a capital I starts many a name (Imail.com), and what merely
        # reads as a slip was typed so, unlike letters of another script.
        if seen.reason in SEEN_REAL and seen.domain != judgement.domain:
            return self._judge.seen_as(domain, judgement, written, seen) or judgement
        if judgement.reason == reasons.ALLOWED_UNLIKELY and domain.subdomain:
            # Or a real domain in front of another: aoI.com.evil.com reads as aol.com.evil.com.
            return self._judge.named_in_front(domain, judgement, parse_domain(seen_text), written)
        return judgement

    def learn(self, counts: dict[str, int]) -> None:
        """Take in the organisation's deliveries per recipient domain (ascii or Unicode).

        A domain with at least ``learning.correspondent_mails`` becomes a known correspondent
        (never flagged, and a candidate whose near-twins are flagged), unless it is itself a
        likely slip; more mail raises its prior. Clears the verdict cache, so call it with
        batches, not per message.
        """
        self._correspondents.learn(counts)

    def learn_relationships(self, relationships: Iterable[Related]) -> None:
        """Take in relationships as the store keeps them (absolute counts at every level,
        :meth:`~typogate.store.history.History.relationships`)."""
        with _no_cycle_collection():  # at a start, hundreds of thousands of new objects
            self._correspondents.learn_relationships(relationships)

    @property
    def learning_key(self) -> str:
        """What this Guard's learning from a store depends on (its code, configuration,
        lists and rules), as a key: a :class:`LearnedSet` kept under the same key is what
        this Guard would learn from the same evidence."""
        lists = self._lists
        listed = (
            f"{kind}:{entry.text}"
            for kind, entries in (("protected", lists.protected), ("known", lists.known))
            for entry in entries
        )
        return learning_key(self.config, listed, self._rules)

    def learned_set(self) -> LearnedSet:
        """The correspondents learned so far, with the evidence they were learned from: for
        :meth:`restore` at the next start (:mod:`typogate.policy.kept`)."""
        with _no_cycle_collection():
            return self._correspondents.learned_set()

    def restore(self, kept: LearnedSet, relationships: Iterable[Related]) -> int:
        """Take in relationships as :meth:`learn_relationships` does, with what a Guard of the
        same :attr:`learning_key` learned from them (``kept``): only the domains whose
        evidence changed since are weighed again. Returns how many were."""
        with _no_cycle_collection():
            return self._correspondents.restore(kept, relationships)

    def observe(self, party: str | None, domain: str, evidence: Evidence) -> bool:
        """Take in one piece of evidence as mail flows: ``party`` (one of ours, an address)
        sent to ``domain``, received from it, or released a message held for it. Returns
        whether it counts: mail from a domain this Guard takes for a likely slip counts only
        as a reply, to a party that wrote to it (its owner writing to us unasked proves
        nothing, and would otherwise open the way for every slip to it)."""
        return self._correspondents.observe(party, domain, evidence)

    def held_back_by_twin(self, domain: str) -> tuple[str, str] | None:
        """Why deliveries did not make ``domain`` a correspondent, though there were enough
        of them and it is no slip of a domain this Guard knows: its one sender of ours
        writes to a near-twin of it too. ``(that sender, the twin)``, else ``None``.
        Raises :class:`InvalidAddress` for a bad domain."""
        return self._correspondents.held_back_by_twin(domain)

    def lifted_by_release(self, verdict: Verdict) -> bool:
        """Whether the sender's own release of mail to ``verdict``'s domain (a held
        message, or a warning it confirmed) would lift this alert from its later mail
        there. Not for an admin's rule, nor for a look-alike of a protected domain that
        anyone can register where typogate stops the mail (reject, hold): only a real
        exchange of mail lifts that one. A warning about it, which let the mail through
        anyway, the sender's word does lift."""
        return verdict.is_alert and lifted_by_release(self._judge, verdict.judgement)

    def slip_like(self, domain: str) -> bool:
        """Whether this Guard alerts on ``domain`` as a slip (likely or possible) of a domain
        it knows, whatever was delivered to it and whatever the rules allow: an allow rule
        vouches for our mail to the domain, not for its mail to us (unasked, that mail would
        outlast the rule and keep a look-alike a correspondent). Raises
        :class:`InvalidAddress`."""
        return self._judge.slip_like(domain)

    def use_mail_states(self, states: dict[str, MailState]) -> None:
        """Take in the monitor's latest finding for each look-alike (A-label domain -> mail
        state): one that accepts mail raises the stakes of a slip to it (a stranger receives
        it), one without mail makes it a misdelivery (it can only bounce)."""
        self._judge.use_mail_states(states)

    def use_rules(self, rules: list[Rule]) -> None:
        """Replace the blanket rules (the configuration's and the web's, in that order).

        Raises :class:`ConfigError` for a rule whose suffix or domain is not valid; the rules
        in use then stay as they were.
        """
        # What an allow rule taught goes with it: army.ml, learned from deliveries while an
        # admin allowed it, is a slip again once the rule is taken back (unless mail received
        # from it, or the rules still in force, keep it a correspondent).
        self._correspondents.reweigh(self._judge.use_rules(rules))
        self._rules = list(rules)

    def _judge_destination(
        self, destination: Destination, shown: str | None = None
    ) -> DomainVerdict:
        """The verdict on where ``destination`` goes, read as its host was written, and as
        the display name it is ``shown`` under names it."""
        domain = destination.domain
        if domain is not None:
            judgement = self._as_seen(destination.written, self._judge.verdict_of(domain))
            if shows_an_at_sign(destination.local):  # "john@army.mil"@evil.com: john@army.mil
                judgement = self._judge.named_in_local_part(domain, judgement, destination.local)
            if shown is not None:  # "john@army.mil" <john@evil.com> too
                address = destination.address
                judgement = self._judge.named_in_display_name(domain, judgement, address, shown)
            return judgement
        host = destination.host
        if destination.route is Route.OWN_HOST:
            return DomainVerdict(
                host,
                Action.ALLOW,
                reasons.ALLOWED_OWN_HOST,
                f"{host or 'The address'} is one of the mail server's own domains: "
                "the mail stays there.",
                rule="own-host",
            )
        slip = self._judge.host_verdict(host)  # gmailcom, or gmail: a slip all the same
        if slip is not None:
            return slip
        return DomainVerdict(
            host,
            Action.ALLOW,
            reasons.ALLOWED_NO_DOMAIN_NAME,
            f"{host} is not a domain name (an address literal, a bare host name or a "
            "public suffix): there is no domain here to mistake for another.",
            rule="no-domain-name",
        )


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cycle collector: building an index allocates millions of objects and frees
    none, so each collection it triggers rescans the growing index for nothing (~15% of the
    build at 200k domains)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _own_hosts(texts: list[str]) -> list[str]:
    hosts = []
    for text in texts:
        try:
            hosts.append(host_name(text))
        except InvalidAddress as error:
            raise ConfigError(
                f"config: gateway.own_domains: {text!r} is not a host name: {error.reason}"
            ) from None
    return hosts
