"""The Guard: one recipient in, one Verdict out (the noisy-channel decision of DESIGN.md).

For a typed domain ``d`` and each candidate intended domain ``c`` from the index, the
log-odds that the sender meant ``c`` rather than ``d`` itself is

    ln prior(c) - ln prior(d) + ln P(d | c) - ln P(d | d)

with ``ln P(d | c)`` from the error model (``typogate.domains.channel``), a high prior for
protected domains, a lower one for known correspondents, and a prior for a never-seen
domain that grows as its name gets shorter (short names are dense: most of them are real).
The probability that ``d`` is a mistake at all is the softmax over "meant d" and every ``c``.
"""

from __future__ import annotations

import gc
import math
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache

from typogate.config import Config, Rule
from typogate.domains import (
    MIN_EDIT_COST,
    CandidateIndex,
    Destination,
    Domain,
    Explanation,
    InvalidAddress,
    Route,
    Slip,
    explain,
    host_name,
    merged,
    mixed_script_label,
    parse_address,
    parse_domain,
    read_destination,
    within_edits,
)
from typogate.domains.names import is_real_suffix
from typogate.errors import ConfigError
from typogate.policy import verdict as reasons
from typogate.policy.lists import Listed, domain_lists
from typogate.policy.relationships import (
    ORGANISATION,
    Related,
    Relationships,
    Tie,
    party_name,
)
from typogate.policy.rules import RuleBook
from typogate.policy.verdict import Candidate, DomainVerdict, Verdict
from typogate.vocabulary import Action, Evidence, MailState, Risk

# Log prior odds, in nats, of an intended domain against a never-seen domain of ordinary length.
LOG_PRIOR_PROTECTED = 12.0
# A known domain is real but, without history, hardly likelier than any other real domain:
# its near-twins are mostly other real domains (franklinma.gov, franklinpa.gov).
LOG_PRIOR_KNOWN = 4.0
# A learned correspondent's prior grows with the evidence for it (ln of the mail), up to
# this much more: a near-twin of a domain written to a thousand times is a strong signal.
LOG_PRIOR_HISTORY_MAX = 7.0
# Mail received from a domain, and a sender's release, weigh more than a delivery to it:
# they show it is real.
RECEIVED_WEIGHT = 3.0
RELEASED_WEIGHT = 5.0
# For a sender who never wrote to a learned correspondent, its history counts in senders,
# not in mail: each of ours who writes to it adds at most this much weight. How often others
# write there says little of what this sender means (a colleague's daily partner is no
# likelier to be this sender's intended domain than the next near-twin it has to choose from).
WEIGHT_PER_SENDER = 3.0
# A sender's own relationship with an intended domain raises its prior for that sender's
# mail: a first send to a near-twin of the sender's own correspondent is the strongest
# signal of a slip (an address's own history counts more than its domain's).
SENDER_ADDRESS_NATS = 3.0
SENDER_DOMAIN_NATS = 1.5
# A sender's own correspondents unknown to the organisation are looked for this many edits
# away from a domain it types (the index's own reach, for names it does not hold).
OWN_EDITS = 2
# ... for a sender with at most this many correspondents: one who writes to more is a list
# server, not a person typing, and the look-up costs a request time in proportion.
OWN_TIES_MAX = 2000
# A host under a protected domain that no list names (``chn.dell.com``, which the candidate
# index reads in ``chndell.com``): the protected prior, less these nats for being unlisted and
# these per character of the host, as a longer label is one of more possible labels.
LOG_PRIOR_UNLISTED_HOST = 1.5
UNLISTED_HOST_NATS_PER_CHAR = 2.0
# A never-seen name shorter than this many characters is likelier to be real, per missing char:
# nearly every two- or three-letter name is registered somewhere.
SHORT_NAME = 6
SHORT_NAME_NATS = 2.0
# Hypotheses below these log-odds (odds of 1:4.5) barely move a decision: not even scored.
LOG_ODDS_FLOOR = -1.5
# For a look-alike that has a mail server (the monitor found one), the thresholds move down a
# step: a possible slip is acted on as a likely one, and warnings start at this share of
# model.warn_at.
LIVE_LOOKALIKE_FACTOR = 0.5
# Two candidates closer than this (a likelihood ratio of 2) are reported as ambiguous.
AMBIGUITY_NATS = math.log(2.0)

# Top-level names reserved for private use, never delegated (RFC 6761, 6762, 7686, 9476;
# ICANN's .internal): a network's own names, not slips.
SPECIAL_USE = frozenset(
    {"example", "internal", "invalid", "local", "localhost", "onion", "test", "alt"}
)
MAX_DOMAIN_LENGTH = 254  # RFC 1035's 253, and a trailing dot
_parse = parse_domain.__wrapped__  # for texts parsed once: kept out of the hot cache
_DIGITS = re.compile(r"[0-9]+")
_END_DIGITS = re.compile(r"(?<![^\W\d_])[0-9]+|[0-9]+(?![^\W\d_])")  # not inside a word
_INSIDE_DIGITS = re.compile(r"(?<=[^\W\d_])[0-9]+(?=[^\W\d_])")  # letters on both sides
# A dot-atom local part that cannot route on: no % (percent hack) and no ! (bang path).
_FAST_LOCAL = re.compile(r"[A-Za-z0-9#$&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9#$&'*+/=?^_`{|}~-]+)*")


class Guard:
    """Decides, for each recipient, whether its domain is a likely mistake.

    Build one per configuration (the index is built here, once) and call
    :meth:`evaluate` for each recipient; it is safe to share between threads.
    """

    def __init__(self, config: Config | None = None, *, cache_size: int = 131_072) -> None:
        self.config = config if config is not None else Config()
        lists = domain_lists(self.config)
        with _no_cycle_collection():
            protected = _parse_listed(lists.protected)
            known = _parse_listed(lists.known)
            self._index = CandidateIndex(
                known, protected=protected, closed=self.config.model.closed_suffixes
            )
        self.profile = lists.profile
        self._protected = frozenset(domain.ascii for domain in protected)
        learning = self.config.learning
        self.relationships = Relationships(
            learning.half_life_days * 86400, self.config.limits.learned_ties
        )
        # What the monitor last found in the DNS for look-alikes (A-label -> state).
        self._mail_states: dict[str, MailState] = {}
        # Correspondents learned while an allow rule decided their verdict: the rule let
        # their deliveries teach, so when the rules change they are weighed again.
        self._ruled: set[Domain] = set()
        # Correspondents learned from deliveries alone: a near-twin that answers their one
        # sender may yet show one to be that sender's saved slip (_forget_saved_slips).
        self._from_deliveries: set[Domain] = set()
        # No slip costs less than MIN_EDIT_COST nats, so more edits than this cannot matter.
        best_prior = max(
            LOG_PRIOR_PROTECTED, LOG_PRIOR_KNOWN + LOG_PRIOR_HISTORY_MAX + SENDER_ADDRESS_NATS
        )
        self._max_edits = int((best_prior - LOG_ODDS_FLOOR) // MIN_EDIT_COST)
        rules = RuleBook(self.config.rules)
        self._rule_for = rules.match if rules else None  # most configurations have none
        self._judged = lru_cache(maxsize=cache_size)(self._judge_domain)
        own = self.config.gateway.own_domains
        self._own = None if own is None else frozenset(_own_hosts(own))

    @property
    def domain_count(self) -> int:
        """How many protected and known domains the index holds."""
        return len(self._index)

    def evaluate(
        self, recipient: str, sender: str | None = None, *, vouched: bool = True
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

        Raises :class:`InvalidAddress` when no destination can be read from ``recipient``.
        """
        at = recipient.rfind("@")
        if 0 < at <= 64 and recipient.isascii() and _FAST_LOCAL.fullmatch(recipient, 0, at):
            domain_text = recipient[at + 1 :]
            if self._own is None or host_name(domain_text) not in self._own:
                try:
                    judgement = self._judge(domain_text)
                except InvalidAddress:
                    pass  # an address literal or a bare host name: read below
                else:
                    return Verdict(recipient, self._with_sender(judgement, sender, vouched))
        destination = read_destination(recipient, self._own)
        judged = [
            (reached, self._with_sender(self._judge_destination(reached), sender, vouched))
            for reached in (destination, *destination.alternatives)
        ]
        reached, judgement = max(judged, key=lambda pair: _severity(pair[1].action))
        return Verdict(reached.address, judgement)

    def _with_sender(
        self, judgement: DomainVerdict, sender: str | None, vouched: bool
    ) -> DomainVerdict:
        if not sender:
            return judgement
        if (
            vouched
            and judgement.action is not Action.ALLOW
            and self._same_domain(sender, judgement.domain)
        ):
            return DomainVerdict(
                judgement.domain,
                Action.ALLOW,
                reasons.ALLOWED_OWN_DOMAIN,
                f"{judgement.domain} is the sender's own domain.",
                rule="own-domain",
            )
        if (
            judgement.candidates
            or judgement.action is not Action.ALLOW
            or judgement.reason in _OWN_MAY_BE_NEAR
        ):
            for_sender = self._for_sender(judgement, sender)
            if vouched or _severity(for_sender.action) >= _severity(judgement.action):
                return for_sender
        return judgement

    def _judge_destination(self, destination: Destination) -> DomainVerdict:
        if destination.domain is not None:
            return self._judge(destination.domain.ascii)
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
        return DomainVerdict(
            host,
            Action.ALLOW,
            reasons.ALLOWED_NO_DOMAIN_NAME,
            f"{host} is not a domain name (an address literal, a bare host name or a "
            "public suffix): there is no domain here to mistake for another.",
            rule="no-domain-name",
        )

    # --- learning --------------------------------------------------------------------------

    def learn(self, counts: dict[str, int]) -> None:
        """Take in the organisation's deliveries per recipient domain (ascii or Unicode).

        A domain with at least ``learning.correspondent_mails`` becomes a known correspondent
        (never flagged, and a candidate whose near-twins are flagged), unless it is itself a
        likely slip; more mail raises its prior. Clears the verdict cache, so call it with
        batches, not per message.
        """
        domains = []
        for text, count in counts.items():
            try:
                domain = parse_domain(text)
            except InvalidAddress:
                continue
            tie = self.relationships.tie(ORGANISATION, domain.unicode)
            sent = count + (tie.sent if tie is not None else 0)
            received, released = (tie.received, tie.released) if tie is not None else (0, 0)
            self.relationships.put(
                ORGANISATION, domain.unicode, sent=sent, received=received, released=released
            )
            domains.append(domain)
        self._reconsider(domains)

    def learn_relationships(self, relationships: Iterable[Related]) -> None:
        """Take in relationships as the store keeps them (absolute counts at every level,
        :meth:`~typogate.store.history.History.relationships`)."""
        domains = []
        for related in relationships:
            try:  # the store has what adapters and logs wrote: either IDNA form
                domain = parse_domain(related.recipient_domain)
            except InvalidAddress:
                continue
            self.relationships.put(
                related.sender,
                domain.unicode,
                sent=related.count,
                received=related.received,
                released=related.released,
                last_seen=related.last_seen.timestamp(),
            )
            if related.sender == ORGANISATION:
                domains.append(domain)
        for domain in domains:
            self._forget_saved_slips(domain)
        self._reconsider(domains)

    def observe(self, party: str | None, domain: str, evidence: Evidence) -> bool:
        """Take in one piece of evidence as mail flows: ``party`` (one of ours, an address)
        sent to ``domain``, received from it, or released a message held for it. Returns
        whether it counts: mail from a domain this Guard takes for a likely slip counts only
        as a reply, to a party that wrote to it (its owner writing to us unasked proves
        nothing, and would otherwise open the way for every slip to it)."""
        try:
            known = parse_domain(domain)
        except InvalidAddress:
            return False
        if evidence is Evidence.RECEIVED and not self._answers(party, known):
            return False
        tie = self.relationships.observe(party, known.unicode, evidence)
        forgot = evidence is not Evidence.SENT and self._forget_saved_slips(known)
        if forgot or (self._may_become_known(tie) and known not in self._index):
            self._reconsider([known])
        return True

    def _answers(self, party: str | None, domain: Domain) -> bool:
        """Whether mail from ``domain`` to ``party`` is a correspondent's: from a domain that
        is no likely slip, or in reply to ``party``'s own mail or release to it."""
        own = self.relationships.tie(party_name(party), domain.unicode) if party else None
        if own is not None and (own.sent or own.released):
            return True
        return not self.slip_like(domain.ascii)

    def _may_become_known(self, tie: Tie) -> bool:
        learning = self.config.learning
        return (
            tie.sent >= learning.correspondent_mails
            or tie.received >= learning.proven_after
            or tie.released >= learning.proven_after
        )

    def _reconsider(self, domains: list[Domain]) -> None:
        """Make correspondents of the domains whose evidence now says so, strongest first:
        mail received from a domain, or a release, proves it real; deliveries alone make a
        correspondent only of a domain this Guard lets mail go to without an alert (years of
        mail to army.ml must never teach that army.ml is written to on purpose, nor fifteen
        deliveries to a saved address with two slips in it that the domain is real)."""
        now = time.time()
        learning = self.config.learning
        learned_before = bool(self._from_deliveries)  # from deliveries alone
        taught: list[Domain] = []
        ranked = []
        for domain in domains:
            tie = self.relationships.tie(ORGANISATION, domain.unicode)
            if tie is None or domain in self._index or not self._may_become_known(tie):
                continue
            ranked.append((self._weight(tie, now), domain, tie))
        ranked.sort(key=lambda entry: (-entry[0], entry[1].ascii))
        for _, domain, tie in ranked:
            proven = self._proven(tie)
            verdict = self._judge_domain(domain.ascii)
            if verdict.action is Action.ALLOW:
                learned = proven or (self._delivered(tie, now) and self._own_twin(domain) is None)
            elif self._of_protected(verdict):
                # A look-alike of a protected domain is the organisation's correspondent only
                # by an admin's rule: the catch-all of army.ml answers every slip released
                # to it. A sender who exchanged mail with it has it as its own (_for_sender).
                learned = False
            else:
                # A slip of a correspondent, likely or possible: deliveries teach nothing,
                # and what one sender heard from it is that sender's (a look-alike of a
                # partner answers whoever wrote to it); several of ours make it the
                # organisation's.
                learned = (
                    proven
                    and self.relationships.vouching(domain.unicode) >= learning.proven_senders
                )
            if learned:
                self._index.add(domain)
                taught.append(domain)
                if verdict.reason == reasons.ALLOWED_RULE:
                    self._ruled.add(domain)
                if not proven:
                    self._from_deliveries.add(domain)
        self._judged.cache_clear()
        if taught and learned_before:
            self._take_back_outweighed(taught, now)

    def _take_back_outweighed(self, taught: list[Domain], now: float) -> None:
        """Weigh again the correspondents learned earlier from deliveries alone that a
        heavier one learned since (``taught``) may show to be its slips. Read at once, as at
        the next start, the heavier is learned first and the slip of it is not; in the
        mail's order the slip came first (``partnr.com`` delivered to before anyone wrote to
        ``partner.com``) and would stay a correspondent while the process runs. They are
        looked for as the next start would find them: as the index's candidates."""
        outweighed = set()
        now_learned = set(taught)
        for meant in taught:
            prior = self._log_prior(meant)
            heavier = self._weight_of(meant, now)
            for typed in self._index.candidates(meant, self._max_edits):
                if (
                    typed in self._from_deliveries
                    and typed not in now_learned
                    and self._weight_of(typed, now) < heavier
                    and explain(typed, meant, budget=prior - _novelty(typed) - LOG_ODDS_FLOOR)
                ):
                    outweighed.add(typed)
        if not outweighed:
            return
        for domain in outweighed:
            self._unlearn(domain)
        # Learned again if still no slip: only lighter ones can be taken back in turn.
        self._reconsider(sorted(outweighed, key=lambda domain: domain.ascii))

    def _weight_of(self, domain: Domain, now: float) -> float:
        tie = self.relationships.tie(ORGANISATION, domain.unicode)
        return self._weight(tie, now) if tie is not None else 0.0

    def _unlearn(self, domain: Domain) -> None:
        """Take a learned correspondent out of the index (the caller clears the verdicts)."""
        self._index.discard(domain)
        self._from_deliveries.discard(domain)

    def _forget_saved_slips(self, real: Domain) -> bool:
        """Take back the correspondents learned from deliveries alone that ``real`` now shows
        to be a saved slip: it looks like a slip of one, and answered (or had mail released
        to it by) that one's only sender, whom the learned one never answered. Learned in
        the mail's order, the slip sent before the real address was written to became the
        correspondent; read at once, neither would have (:meth:`_own_twin`). Returns
        whether any was taken back (the caller clears the verdicts)."""
        if not self._from_deliveries:
            return False
        verdict = self._judged(real.ascii)
        if verdict.reason == reasons.ALLOWED_RULE:  # the rule lets mail go; is it a slip?
            verdict = self._judge_domain(real.ascii, ruled=False)
        if verdict.action is Action.ALLOW:
            return False
        forgot = False
        for meant in (verdict.suggestion, *verdict.alternatives):
            learned = _parse(meant) if meant is not None else None
            if learned is None or learned not in self._from_deliveries:
                continue
            tie = self.relationships.tie(ORGANISATION, learned.unicode)
            if tie is not None and not tie.outbound_only:
                self._from_deliveries.discard(learned)  # it answered: real in its own right
                continue
            sender = self.relationships.sole_sender(learned.unicode)
            answered = self.relationships.tie(sender, real.unicode) if sender else None
            if answered is not None and not answered.outbound_only:
                self._unlearn(learned)
                forgot = True
        return forgot

    def _proven(self, tie: Tie) -> bool:
        """Mail received from the domain, or releases to it: enough to prove it real."""
        proven_after = self.config.learning.proven_after
        return tie.received >= proven_after or tie.released >= proven_after

    def _delivered(self, tie: Tie, now: float) -> bool:
        """Deliveries to the domain, faded: enough to make a correspondent of no slip."""
        faded = tie.sent * tie.fade(now, self.relationships.half_life)
        return faded >= self.config.learning.correspondent_mails

    def _own_twin(self, domain: Domain) -> tuple[str, str] | None:
        """The one sender of ours who writes to ``domain``, and the near-twin of it that the
        sender writes to too: one of the two is that sender's saved slip (``sandre.mo``
        beside ``sandre.ml``, neither answering), and deliveries cannot tell which."""
        sender = self.relationships.sole_sender(domain.unicode)
        if sender is None:
            return None
        address, _ = self.relationships.of_sender(sender)
        budget = LOG_PRIOR_KNOWN + SENDER_ADDRESS_NATS - LOG_ODDS_FLOOR
        for name, _ in _own_near(domain, address):
            if (
                name != domain.unicode
                and not _numbered_siblings(domain.unicode, name)
                and explain(domain, _parse(name), budget=budget) is not None
            ):
                return sender, name
        return None

    def held_back_by_twin(self, domain: str) -> tuple[str, str] | None:
        """Why deliveries did not make ``domain`` a correspondent, though there were enough
        of them and it is no slip of a domain this Guard knows: its one sender of ours
        writes to a near-twin of it too. ``(that sender, the twin)``, else ``None``.
        Raises :class:`InvalidAddress` for a bad domain."""
        known = _parse(domain)
        tie = self.relationships.tie(ORGANISATION, known.unicode)
        if (
            tie is None
            or known in self._index
            or self._proven(tie)
            or not self._delivered(tie, time.time())
        ):
            return None
        return self._own_twin(known)

    def slip_like(self, domain: str) -> bool:
        """Whether this Guard alerts on ``domain`` as a slip (likely or possible) of a domain
        it knows, whatever was delivered to it and whatever the rules allow: an allow rule
        vouches for our mail to the domain, not for its mail to us (unasked, that mail would
        outlast the rule and keep a look-alike a correspondent). Raises
        :class:`InvalidAddress`."""
        verdict = self._judge(domain)
        if verdict.reason == reasons.ALLOWED_RULE:
            verdict = self._judge_domain(verdict.domain, ruled=False)
        return verdict.action is not Action.ALLOW

    def _of_protected(self, verdict: DomainVerdict) -> bool:
        """Whether a slip looks like a protected domain: typogate never teaches itself to let
        mail go to such a look-alike (an admin's allow rule does that, on purpose)."""
        return any(
            self._under_protected(meant)
            for meant in (verdict.suggestion, *verdict.alternatives)
            if meant is not None
        )

    def _under_protected(self, name: str) -> bool:
        """Whether ``name`` is a protected domain or under one."""
        return any(meant in self._protected for meant in _and_parents(parse_domain(name).ascii))

    def _weight(self, tie: Tie, now: float) -> float:
        evidence = tie.sent + RECEIVED_WEIGHT * tie.received + RELEASED_WEIGHT * tie.released
        return evidence * tie.fade(now, self.relationships.half_life)

    def use_mail_states(self, states: dict[str, MailState]) -> None:
        """Take in the monitor's latest finding for each look-alike (A-label domain -> mail
        state): one that accepts mail raises the stakes of a slip to it (a stranger receives
        it), one without mail makes it a misdelivery (it can only bounce)."""
        self._mail_states = dict(states)
        self._judged.cache_clear()

    def use_rules(self, rules: list[Rule]) -> None:
        """Replace the blanket rules (the configuration's and the web's, in that order).

        Raises :class:`ConfigError` for a rule whose suffix or domain is not valid; the rules
        in use then stay as they were.
        """
        book = RuleBook(rules)
        self._rule_for = book.match if book else None
        # What an allow rule taught goes with it: army.ml, learned from deliveries while an
        # admin allowed it, is a slip again once the rule is taken back (unless mail received
        # from it, or the rules still in force, keep it a correspondent).
        ruled, self._ruled = self._ruled, set()
        for domain in ruled:
            self._unlearn(domain)
        self._judged.cache_clear()
        self._reconsider(list(ruled))

    def judge_domain(self, domain: str) -> DomainVerdict:
        """Judge a bare domain (cached). Raises :class:`InvalidAddress` for a bad domain."""
        return self._judge(domain)

    def _judge(self, text: str) -> DomainVerdict:
        """The verdict for a domain text, cached by its normal form, so that blank padding,
        case or a trailing dot never add an entry, and no key is longer than a domain:
        the cache's memory is bounded by its size whatever the input."""
        key = text.strip().lower()
        if len(key) > MAX_DOMAIN_LENGTH:  # padded inside (soft hyphens) or not a domain
            key = _parse_host(text).ascii
        return self._judged(key)

    @staticmethod
    def _same_domain(sender: str, domain: str) -> bool:
        try:
            return parse_address(sender).domain.unicode == domain
        except InvalidAddress:
            return False

    def _judge_domain(self, text: str, *, ruled: bool = True) -> DomainVerdict:
        """The verdict for a domain text; with ``ruled`` false, the model's alone: no rule,
        and nothing learned only because a rule allowed it."""
        domain = _parse_host(text)  # the verdict is cached by this text: no second parse
        name = domain.unicode
        rule = self._rule_for(domain) if self._rule_for and ruled else None
        if rule is not None and rule.action is Action.ALLOW:
            message = rule.message or f"{name} is allowed by your organisation's rules."
            return DomainVerdict(
                name, Action.ALLOW, reasons.ALLOWED_RULE, message, rule=_rule(rule)
            )
        if rule is None:
            if domain.ascii in self._protected:
                return DomainVerdict(
                    name,
                    Action.ALLOW,
                    reasons.ALLOWED_PROTECTED,
                    f"{name} is a protected domain.",
                    rule="protected",
                )
            if self._indexed(domain, ruled):
                return DomainVerdict(
                    name,
                    Action.ALLOW,
                    reasons.ALLOWED_KNOWN,
                    f"{name} is a known correspondent.",
                    rule="known",
                )
            parent = self._indexed_parent(domain, ruled) if "." in domain.name else None
            if parent is not None and not (siblings := self._siblings(domain, parent)):
                return DomainVerdict(
                    name,
                    Action.ALLOW,
                    reasons.ALLOWED_SUBDOMAIN,
                    f"{name} is under {parent}, a domain you write to.",
                    rule=f"subdomain:{parent}",
                )
            if parent is not None:  # usmariid.army.mil: a slip in a host name under a listed one
                return self._decide(domain, siblings, tuple(siblings))
        # A real domain under a blocking rule (gmail.com under a rule on .com) is blocked as
        # written: it is no slip, so no other domain is offered in its place.
        real = rule is not None and (
            domain.ascii in self._protected
            or domain in self._index
            or ("." in domain.name and self._indexed_parent(domain) is not None)
        )
        candidates = () if real else self._hypotheses(domain)
        likely = [c for c in candidates if c.log_odds >= LOG_ODDS_FLOOR]
        if rule is not None:
            return self._blocked(domain, rule, likely, candidates)
        return self._decide(domain, likely, candidates)

    def _siblings(self, domain: Domain, parent: str) -> list[Candidate]:
        """Listed domains under the same ``parent`` that ``domain`` is a likely slip of
        (usamriid.army.mil for usmariid.army.mil): a subdomain of a listed domain is allowed
        unless it looks like a mistake for one of its listed siblings."""
        under = "." + parent
        host = domain.unicode.removesuffix(under)
        # Short host names are dense (most three-letter ones under a big parent are real),
        # and hosts that differ only in their numbers are numbered siblings (101arw, 102arw).
        novelty = SHORT_NAME_NATS * max(0, SHORT_NAME - len(host.partition(".")[0]))
        return [
            c
            for c in self._hypotheses_for(domain, "", novelty)
            if c.domain.endswith(under)
            and c.log_odds >= LOG_ODDS_FLOOR
            and not _numbered_siblings(c.domain.removesuffix(under), host)
        ]

    def _indexed(self, domain: Domain, ruled: bool = True) -> bool:
        """Whether ``domain`` is protected or known; with ``ruled`` false, not counting
        what was learned only because an allow rule let it be."""
        return domain in self._index and (ruled or domain not in self._ruled)

    def _indexed_parent(self, domain: Domain, ruled: bool = True) -> str | None:
        labels = domain.ascii.split(".")
        for cut in range(1, len(labels) - 1):
            parent = ".".join(labels[cut:])
            try:
                candidate = parse_domain(parent)
            except InvalidAddress:
                return None  # reached the public suffix
            if self._indexed(candidate, ruled):
                return candidate.unicode
        return None

    def _hypotheses(self, domain: Domain) -> tuple[Candidate, ...]:
        """Every intended domain worth considering, best first, one per suggestion: those
        below ``LOG_ODDS_FLOOR`` too, down to where a sender's own relationship with the
        intended domain could still lift them above it."""
        novelty = _novelty(domain)
        found = self._hypotheses_for(domain, "", novelty)
        if domain.subdomain and not any(c.log_odds >= LOG_ODDS_FLOOR for c in found):
            # mail.army.ml: the slip may be in the registrable part alone.
            registrable = parse_domain(domain.registrable)
            below = self._hypotheses_for(registrable, domain.subdomain + ".", novelty)
            if below:
                return below
        return found

    def _hypotheses_for(self, typed: Domain, prefix: str, novelty: float) -> tuple[Candidate, ...]:
        best: dict[str, tuple[float, Explanation]] = {}
        for meant in self._index.candidates(typed, self._max_edits):
            prior = self._log_prior(meant)
            # Kept down to where a sender's own relationship with it could lift it.
            budget = prior + SENDER_ADDRESS_NATS - novelty - LOG_ODDS_FLOOR
            explanation = explain(typed, meant, budget=budget)
            if explanation is None:
                continue
            log_odds = prior - explanation.cost - novelty
            suggestion = prefix + meant.unicode
            held = best.get(suggestion)
            if held is None or held[0] < log_odds:
                best[suggestion] = (log_odds, explanation)
        # Equally likely hypotheses in name order: the same answer on every run.
        ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))
        return tuple(
            _candidate(suggestion, log_odds, explanation)
            for suggestion, (log_odds, explanation) in ranked
        )

    def _log_prior(self, meant: Domain) -> float:
        if meant.ascii in self._protected:
            return LOG_PRIOR_PROTECTED
        if meant not in self._index:  # made by the index: an unlisted host, under a protected one
            host = UNLISTED_HOST_NATS_PER_CHAR * len(meant.subdomain)
            return LOG_PRIOR_PROTECTED - LOG_PRIOR_UNLISTED_HOST - host
        return LOG_PRIOR_KNOWN + _history_nats(self._weight_of(meant, time.time()))

    def _unknown_to_sender(self, suggestion: str) -> float:
        """The nats (zero or less) a learned correspondent's prior loses for a sender who
        never wrote to it: its history counted in senders (at most ``WEIGHT_PER_SENDER``
        each), not in mail. For a suggestion that is no protected domain."""
        for meant in _and_parents(suggestion):
            tie = self.relationships.tie(ORGANISATION, meant)
            if tie is not None:
                weight = self._weight(tie, time.time())
                by_senders = min(weight, WEIGHT_PER_SENDER * self.relationships.senders(meant))
                return _history_nats(by_senders) - _history_nats(weight)
        return 0.0

    def _risk(self, domain: Domain) -> Risk:
        """A leak, unless the slip stays where no stranger can receive it: a closed registry
        (``model.closed_suffixes``), a suffix that is no real one, or a subdomain of a
        protected domain."""
        suffix = domain.suffix
        closed = self.config.model.closed_suffixes
        if any(suffix == name or suffix.endswith("." + name) for name in closed):
            return Risk.MISDELIVERY  # whoever receives it there is inside the registry
        state = self._mail_states.get(domain.ascii)
        if state is not None and state.accepts_mail:
            return Risk.LEAK
        if state in _BOUNCES:
            return Risk.MISDELIVERY
        if not is_real_suffix(suffix):
            return Risk.MISDELIVERY
        labels = domain.ascii.split(".")
        if any(".".join(labels[cut:]) in self._protected for cut in range(1, len(labels))):
            return Risk.MISDELIVERY
        return Risk.LEAK

    def _actions(self, risk: Risk) -> tuple[Action, Action]:
        """The actions for a likely and a possible slip of this risk."""
        actions = self.config.actions
        if risk is Risk.MISDELIVERY:
            misdelivery = actions.misdelivery
            return (
                misdelivery.typo or actions.typo,
                misdelivery.possible_typo or actions.possible_typo,
            )
        return actions.typo, actions.possible_typo

    def _decide(
        self,
        domain: Domain,
        likely: list[Candidate],
        candidates: tuple[Candidate, ...] = (),
        because: str = "",
    ) -> DomainVerdict:
        """The verdict from the hypotheses that matter (``likely``, best first); ``because``
        is said after the explanation of an alert."""
        name = domain.unicode
        if not likely and (label := mixed_script_label(name)) is not None:
            risk = self._risk(domain)
            return DomainVerdict(
                name,
                self._actions(risk)[0],
                Slip.CONFUSABLE.value,
                f"{name} mixes Latin letters with look-alike letters of another script in "
                f"{label!r}, a spoofing trick; check the address.",
                score=1.0,
                risk=risk,
            )
        if not likely and not is_real_suffix(domain.suffix) and domain.suffix not in SPECIAL_USE:
            # cmsp4.con: no such top-level domain. Only a possible slip (a warning, by
            # default): a network may route a name of its own (an allow rule says so).
            return DomainVerdict(
                name,
                self._actions(Risk.MISDELIVERY)[1],
                reasons.TYPO_NO_SUCH_SUFFIX,
                f"{name} is under .{domain.suffix}, which is no top-level domain: mail to it "
                "can only bounce. Check the address.",
                score=1.0,
                risk=Risk.MISDELIVERY,
                candidates=candidates,
            )
        if not likely:
            return DomainVerdict(
                name,
                Action.ALLOW,
                reasons.ALLOWED_UNLIKELY,
                f"{name} does not look like a mistake for a domain you protect or write to.",
                candidates=candidates,
            )
        score = _probability(likely)
        top = likely[0]
        model = self.config.model
        reject_at, warn_at = model.reject_at, model.warn_at
        state = self._mail_states.get(domain.ascii)
        live = state is not None and state.accepts_mail
        if live:
            # A look-alike with a mail server receives what is sent there: act a step sooner.
            reject_at, warn_at = warn_at, warn_at * LIVE_LOOKALIKE_FACTOR
        if score < warn_at:
            return DomainVerdict(
                name,
                Action.ALLOW,
                reasons.ALLOWED_UNLIKELY,
                f"{name} is close to {top.domain} but more likely meant as written.",
                score=score,
                edits=top.edits,
                candidates=candidates,
            )
        risk = self._risk(domain)
        typo, possible_typo = self._actions(risk)
        action = typo if score >= reject_at else possible_typo
        if live:
            because += f" {name} has a mail server: whatever is sent there is received."
        sooner = live and score < (model.reject_at if action is typo else model.warn_at)
        rivals = tuple(c.domain for c in likely[1:] if top.log_odds - c.log_odds < AMBIGUITY_NATS)
        if rivals:
            options = " or ".join((top.domain, *rivals))
            return DomainVerdict(
                name,
                action,
                reasons.TYPO_AMBIGUOUS,
                f"{name} looks like a mistake for {options}; check which one you meant." + because,
                suggestion=None,
                score=score,
                alternatives=(top.domain, *rivals),
                edits=top.edits,
                risk=risk,
                candidates=candidates,
            )
        how = "; ".join(top.edits)
        return DomainVerdict(
            name,
            action,
            reasons.TYPO_LIVE_LOOKALIKE if sooner else top.reason,
            f"{name} looks like a mistake for {top.domain} ({how}).{because} "
            f"Did you mean {top.domain}?",
            suggestion=top.domain,
            score=score,
            edits=top.edits,
            risk=risk,
            candidates=candidates,
        )

    def _blocked(
        self,
        domain: Domain,
        rule: Rule,
        likely: list[Candidate],
        candidates: tuple[Candidate, ...],
    ) -> DomainVerdict:
        code = reasons.BLOCKED_SUFFIX if rule.suffix is not None else reasons.BLOCKED_DOMAIN
        target = f".{rule.suffix}" if rule.suffix is not None else str(rule.domain)
        suggestion = likely[0].domain if likely else None
        # The rule's own message is the admin's whole sentence to the sender; the model's
        # suggestion stays in the verdict (not a second "did you mean" after theirs).
        message = rule.message or f"Mail to {target} is blocked by your organisation's rules."
        if suggestion is not None and rule.message is None:
            message += f" Did you mean {suggestion}?"
        score = _probability(likely) if likely else 1.0
        return DomainVerdict(
            domain.unicode,
            rule.action,
            code,
            message,
            suggestion=suggestion,
            score=score,
            rule=_rule(rule),
            risk=self._risk(domain),
            candidates=candidates,
        )

    def _for_sender(self, judgement: DomainVerdict, sender: str) -> DomainVerdict:
        """The judgement for ``sender``'s mail, with its own relationships: a domain it has
        written to before (and that is no likely slip) is allowed; a first send to a
        near-twin of one of its own correspondents weighs more, and so does a send to one
        that never answered it, beside a near-twin that did; a near-twin of a domain only
        others write to weighs less (by how many of them do, not how much)."""
        address, domain = self.relationships.of_sender(sender)
        if self.relationships.own_domains() < 2:
            domain = {}  # the sender's domain is the organisation: its history is counted
        if not address and not domain:
            return judgement
        typed = judgement.domain
        own = address.get(typed)
        if (
            own is not None
            and judgement.action is not Action.ALLOW
            and not judgement.rule.startswith(_RULED)  # an admin's block is never lifted
        ):
            # The sender's own deliveries never lift an alert (a saved slip is delivered
            # again and again); mail from the domain or a release does, and for a look-alike
            # of a protected domain only a real exchange.
            if self._of_protected(judgement):
                vouched = _exchanged(own)
            else:
                vouched = bool(own.received or own.released)
            if vouched:
                return DomainVerdict(
                    typed,
                    Action.ALLOW,
                    reasons.ALLOWED_RELATIONSHIP,
                    f"{sender} has written to {typed} before.",
                    rule="relationship",
                )
        # Written to before, never answered: deliveries do not say it was meant (a saved
        # slip, or one that bounced, which no policy request shows), so a near-twin of it
        # that does answer this sender is still what it may have meant.
        unanswered = own is not None and own.outbound_only
        candidates = judgement.candidates
        if judgement.reason in _OWN_MAY_BE_NEAR and (own is None or unanswered):
            candidates += self._own_candidates(typed, address, answered_only=unanswered)
        if not candidates or judgement.rule.startswith(_RULED):
            return judgement
        lifted = []
        lifts = {}
        relationship = self.config.learning.relationship_mails
        for candidate in candidates:
            lift = _lift(candidate.domain, address, domain, relationship)
            if (
                lift < SENDER_ADDRESS_NATS  # a sender we know, who never wrote there
                and address
                and not self._under_protected(candidate.domain)
            ):
                if _numbered_siblings(typed, candidate.domain):
                    continue  # g1xmail.top for one who never wrote to g2xmail.top: a series
                lift += self._unknown_to_sender(candidate.domain)
            if own is not None and not (unanswered and _answered(address, candidate.domain)):
                lift = min(lift, 0.0)  # no first send: only what it never wrote to weighs less
            lifts[candidate.domain] = lift
            lifted.append(candidate._replace(log_odds=candidate.log_odds + lift))
        if lifted == list(judgement.candidates):
            return judgement
        lifted.sort(key=lambda c: (-c.log_odds, c.domain))
        likely = [c for c in lifted if c.log_odds >= LOG_ODDS_FLOOR]
        because = ""
        if likely and lifts[likely[0].domain] > 0:
            meant = likely[0].domain
            because = (
                f" {sender} writes to {meant}, never before to {typed}."
                if own is None
                else f" {sender} has had answers from {meant}, never from {typed}."
            )
        return self._decide(parse_domain(typed), likely, candidates, because)

    def _own_candidates(
        self, typed: str, address: dict[str, Tie], *, answered_only: bool = False
    ) -> tuple[Candidate, ...]:
        """The sender's own correspondents near ``typed``, as candidates for this sender's
        slips alone: those it has a relationship with (two deliveries,
        ``learning.relationship_mails``, or mail received or released; with
        ``answered_only``, mail received or released only). One the organisation
        does not know yet is real enough for the one who writes there (``LOG_PRIOR_KNOWN``);
        one it learned is read here for the two slips the index looks for only in
        protected names, with the weight of its history."""
        domain = parse_domain(typed)
        near = _own_near(domain, address)
        if not near:
            return ()
        novelty = _novelty(domain)
        found = []
        relationship = self.config.learning.relationship_mails
        for name, edits in near:
            tie = address[name]
            if tie.outbound_only and (answered_only or tie.sent < relationship):
                continue  # one delivery may have been a slip of its own (leviaecrman.store)
            meant = parse_domain(name)
            known = meant in self._index
            if known and (edits < 2 or meant.ascii in self._protected):
                continue  # the index found it already: one slip, or two of a protected name
            if self._likely(self._judged(meant.ascii)):
                continue  # the sender's own earlier slip is no intended domain
            if _numbered_siblings(typed, name):
                continue  # afms2 beside afms: another host of a series, as for listed ones
            prior = (self._log_prior(meant) if known else LOG_PRIOR_KNOWN) - novelty
            explanation = explain(
                domain, meant, budget=prior + SENDER_ADDRESS_NATS - LOG_ODDS_FLOOR
            )
            if explanation is not None:
                found.append(_candidate(meant.unicode, prior - explanation.cost, explanation))
        return tuple(found)

    def _likely(self, judgement: DomainVerdict) -> bool:
        """A likely slip (not only a possible one) of a domain this Guard knows."""
        return (
            judgement.action is not Action.ALLOW and judgement.score >= self.config.model.reject_at
        )


# A look-alike of a protected domain is real, for a sender, when it answered at least this
# share of the mail that sender sent to it.
REPLY_SHARE = 0.1


def _exchanged(tie: Tie) -> bool:
    """Mail received from the domain, a fair share of what was sent there: a conversation,
    not a typo domain's operator warning now and then."""
    return tie.received > 0 and tie.received >= REPLY_SHARE * tie.sent


def _answered(address: dict[str, Tie], name: str) -> bool:
    """Whether the sender has had mail from ``name`` (or a domain it is under), or released
    mail to it."""
    return any(
        (tie := address.get(meant)) is not None and not tie.outbound_only
        for meant in _and_parents(name)
    )


def _lift(
    suggestion: str, address: dict[str, Tie], domain: dict[str, Tie], relationship: int
) -> float:
    """How much a sender's own relationship with ``suggestion`` (or a domain it is under)
    raises the odds that the sender meant it: ``relationship`` deliveries make one (two, as
    Mimecast counts them), and so does any mail received from it or released to it."""

    def related(tie: Tie | None) -> bool:
        return tie is not None and (tie.sent >= relationship or tie.received or tie.released) > 0

    for meant in _and_parents(suggestion):
        if related(address.get(meant)):
            return SENDER_ADDRESS_NATS
        if related(domain.get(meant)):
            return SENDER_DOMAIN_NATS
    return 0.0


# Verdicts on names the organisation does not know, or knows only the parent of: a
# sender's own correspondent near them may be what it meant (gis2.sam.usace.army.mil).
_OWN_MAY_BE_NEAR = frozenset({reasons.ALLOWED_UNLIKELY, reasons.ALLOWED_SUBDOMAIN})
_SEVERITY = {Action.ALLOW: 0, Action.WARN: 1, Action.HOLD: 2, Action.REJECT: 3}
# Mail states in which mail to the domain can only bounce.
_BOUNCES = frozenset({MailState.NXDOMAIN, MailState.NULL_MX, MailState.NO_MAIL})


def _own_near(typed: Domain, address: dict[str, Tie]) -> list[tuple[str, int]]:
    """A sender's own correspondents at most ``OWN_EDITS`` from ``typed``, with their edits,
    and those ``typed`` spells whole as its name (``ebmpecsddisamil.com`` for
    ``ebmpe.csd.disa.mil``: one slip, which no index looks for in a host that is the
    sender's alone); none for a sender with more than ``OWN_TIES_MAX`` (a list server: the
    look-up would cost in proportion)."""
    if len(address) > OWN_TIES_MAX:
        return []
    names = list(address)
    near = [
        (names[position], edits)
        for position, edits in within_edits(typed.unicode, names, OWN_EDITS)
    ]
    # All names flattened in one string (no name holds a line break) and searched at once:
    # this is on the path of every first send, and a twin of this shape is rare.
    whole = merged(typed.name)
    if f"\n{whole}\n" in merged("\n" + "\n".join(names) + "\n"):
        near += [(n, 1) for n in names if merged(n) == whole and n != typed.unicode]
    return near


def _and_parents(name: str) -> Iterator[str]:
    """``name`` and every domain it is under, down to two labels (``a.b.army.mil``,
    ``b.army.mil``, ``army.mil``)."""
    labels = name.split(".")
    for cut in range(len(labels) - 1):
        yield ".".join(labels[cut:])


def _novelty(domain: Domain) -> float:
    """The nats by which a short name is likelier meant as written: most are real."""
    length = len(domain.name) - domain.name.count(".")
    return SHORT_NAME_NATS * max(0, SHORT_NAME - length)


def _history_nats(weight: float) -> float:
    """What a learned correspondent's evidence adds to its prior: the log of its weight."""
    return min(LOG_PRIOR_HISTORY_MAX, math.log1p(weight)) if weight > 0 else 0.0


def _candidate(suggestion: str, log_odds: float, explanation: Explanation) -> Candidate:
    return Candidate(
        suggestion,
        log_odds,
        explanation.reason.value,
        tuple(edit.detail for edit in explanation.edits),
    )


def _numbered_siblings(one: str, other: str) -> bool:
    """Whether two host names are one name numbered differently: other numbers in the same
    places (``101arw``, ``102arw``) or a number added at an end (``afms``, ``afms2``). A digit
    inside a word is a slip (``afce2e`` for ``afcee``), and a name with several numbers, one
    inside a word, is a code whose digits are letters like the others (``6ed9cit4q``:
    ``7ed9cit4q`` is a slip of it; ``g2xmail`` still numbers a series). The same numbers
    written differently are no series but a slip (``s337`` for ``s0337``: a zero left out)."""
    if _code(one) or _code(other):
        return False
    numbers = [int(n) for n in _DIGITS.findall(one)]
    if numbers == [int(n) for n in _DIGITS.findall(other)]:
        return False
    return _DIGITS.sub("#", one) == _DIGITS.sub("#", other) or (
        _END_DIGITS.sub("", one) == _END_DIGITS.sub("", other)
    )


def _code(name: str) -> bool:
    return len(_DIGITS.findall(name)) > 1 and _INSIDE_DIGITS.search(name) is not None


def _severity(action: Action) -> int:
    return _SEVERITY[action]


_RULED = "rule:"


def _rule(rule: Rule) -> str:
    return f"{_RULED}{rule.target}"


def _probability(hypotheses: list[Candidate]) -> float:
    """P(the typed domain is a mistake): softmax of every hypothesis against "meant as typed"."""
    top = hypotheses[0].log_odds
    if top > 30:  # exp would not change the answer, only overflow
        return 1.0
    mass = sum(math.exp(h.log_odds) for h in hypotheses)
    return mass / (1.0 + mass)


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


def _parse_host(text: str) -> Domain:
    """A domain as Postfix maps it before delivering (UTS #46): the characters it ignores
    (U+200B, U+00AD, U+FEFF) gone, full-width letters narrowed, as :func:`host_name` does
    for an address; a log names the domain as it was typed."""
    return _parse(text if text.isascii() else host_name(text))


def _parse_listed(listed: list[Listed]) -> list[Domain]:
    domains = []
    for entry in listed:
        try:
            domains.append(_parse(entry.text))
        except InvalidAddress as error:
            raise ConfigError(
                f"{entry.origin}: {entry.text!r} is not a domain: {error.reason}"
            ) from None
    return domains
