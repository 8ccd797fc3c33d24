"""The verdict for one domain, whoever sends: the noisy-channel decision of DESIGN.md.

For a typed domain ``d`` and each candidate intended domain ``c`` from the index, the
log-odds that the sender meant ``c`` rather than ``d`` itself is

    ln prior(c) - ln prior(d) + ln P(d | c) - ln P(d | d)

with ``ln P(d | c)`` from the error model (``typogate.domains.channel``), a high prior for
protected domains, a lower one for known correspondents, and a prior for a never-seen
domain that grows as its name gets shorter (short names are dense: most of them are real).
The probability that ``d`` is a mistake at all is the softmax over "meant d" and every ``c``.
"""

from __future__ import annotations

import math
import re
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import suppress
from functools import lru_cache

from typogate.config import Config, Rule
from typogate.domains import (
    MIN_EDIT_COST,
    CandidateIndex,
    Domain,
    Explanation,
    InvalidAddress,
    Slip,
    as_seen,
    explain,
    explain_host,
    external_form,
    host_name,
    latin_readings,
    mixed_script_label,
    parse_domain,
    printable_form,
    read_as,
)
from typogate.domains.names import is_real_suffix
from typogate.policy import verdict as reasons
from typogate.policy.readings import (
    FOR_ITS_DOT,
    MAX_DOMAIN_LENGTH,
    MAX_FRONTS_JUDGED,
    addresses_seen,
    as_read,
    fronts,
    parse_once,
    pieces,
    unmerged,
)
from typogate.policy.relationships import ORGANISATION, Relationships, Tie
from typogate.policy.rules import rule_books
from typogate.policy.verdict import Candidate, DomainVerdict
from typogate.vocabulary import Action, MailState, Risk, severity

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
# A sender's own relationship with an intended domain raises its prior for that sender's
# mail (typogate.policy.sender): hypotheses are kept down to where this could lift them.
SENDER_ADDRESS_NATS = 3.0
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
# The verdicts on a domain that a reader may see in place of another (aol.com for aoI.com),
# for the look-alike to be stopped, and what each says the seen domain is.
SEEN_REAL = {
    reasons.ALLOWED_PROTECTED: "a protected domain",
    reasons.ALLOWED_KNOWN: "a domain you write to",
}
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
# A name read from a label in front: the name, the words it was read from, how its dot
# was written, whether it begins after a hyphen, and whether a slip of it is looked for.
_Reading = tuple[Domain, str, str, bool, bool]
RULED = "rule:"  # how a verdict an admin's rule decided names its rule
_DIGITS = re.compile(r"[0-9]+")
_END_DIGITS = re.compile(r"(?<![^\W\d_])[0-9]+|[0-9]+(?![^\W\d_])")  # not inside a word
_LABEL_END_DIGITS = re.compile(r"[0-9]+(?=\.|$)")  # the number that ends a label
_INSIDE_DIGITS = re.compile(r"(?<=[^\W\d_])[0-9]+(?=[^\W\d_])")  # letters on both sides
# Mail states in which mail to the domain can only bounce.
_BOUNCES = frozenset({MailState.NXDOMAIN, MailState.NULL_MX, MailState.NO_MAIL})


class DomainJudge:
    """What the organisation knows of domains (the protected ones, its correspondents in
    the index, its rules, the monitor's findings) and the verdict that knowledge gives a
    domain, whoever sends to it. Verdicts are cached until the knowledge changes."""

    def __init__(
        self,
        config: Config,
        index: CandidateIndex,
        protected: frozenset[str],
        relationships: Relationships,
        *,
        cache_size: int,
    ) -> None:
        self.config = config
        self.index = index
        self.protected = protected  # A-labels
        self.relationships = relationships
        # Correspondents learned while an allow rule decided their verdict: the rule let
        # their deliveries teach, so when the rules change they are weighed again.
        self.ruled: set[Domain] = set()
        # Correspondents learned from deliveries alone (learning.py keeps it): no proof the
        # domain is its own, so not whose a name shown beside it says (_named_in_text).
        self.from_deliveries: set[Domain] = set()
        # What the monitor last found in the DNS for look-alikes (A-label -> state).
        self._mail_states: dict[str, MailState] = {}
        # Domains a caller has read already, by A-label, while it asks for their verdict
        # (verdict_of): checking an IDN's A-label again costs about 90 µs.
        self._read: dict[str, Domain] = {}
        # No slip costs less than MIN_EDIT_COST nats, so more edits than this cannot matter.
        best_prior = max(
            LOG_PRIOR_PROTECTED, LOG_PRIOR_KNOWN + LOG_PRIOR_HISTORY_MAX + SENDER_ADDRESS_NATS
        )
        self.max_edits = int((best_prior - LOG_ODDS_FLOOR) // MIN_EDIT_COST)
        rules, self._sender_rules = rule_books(config.rules)
        self._rule_for = rules.match if rules else None  # most configurations have none
        # The cache holds the judge weakly. A bound method would make a cycle (judge, cache,
        # method, judge) that only a full collection frees: in a serving process, which
        # keeps its objects out of the collector's sight, a walk over all of them while
        # mail waits, at every Guard swapped in (runtime.Runtime._use).
        judge = weakref.ref(self)

        def judged(key: str) -> DomainVerdict:
            alive = judge()
            assert alive is not None  # the cache is reached only through its judge
            return alive.fresh_verdict(key)

        self._judged = lru_cache(maxsize=cache_size)(judged)

    def verdict(self, text: str) -> DomainVerdict:
        """The verdict for a domain text, cached by its normal form, so that blank padding,
        case or a trailing dot never add an entry, and no key is longer than a domain:
        the cache's memory is bounded by its size whatever the input. Raises
        :class:`InvalidAddress`."""
        key = text.strip().lower()
        if len(key) > MAX_DOMAIN_LENGTH:  # padded inside (soft hyphens) or not a domain
            key = _parse_host(text).ascii
        return self._judged(key)

    def verdict_of(self, domain: Domain) -> DomainVerdict:
        """:meth:`verdict` for a domain the caller has read already: judged, if it must be,
        without reading its text again."""
        key = domain.ascii
        if "xn--" not in key:
            return self.verdict(key)  # a name without an A-label is read again at C speed
        self._read[key] = domain
        try:
            return self.verdict(key)
        finally:
            self._read.pop(key, None)

    def forget_verdicts(self) -> None:
        """Drop the cached verdicts: what they were judged with has changed."""
        self._judged.cache_clear()

    def use_mail_states(self, states: dict[str, MailState]) -> None:
        """Take in the monitor's latest finding for each look-alike (A-label -> state)."""
        self._mail_states = dict(states)
        self.forget_verdicts()

    def use_rules(self, rules: list[Rule]) -> set[Domain]:
        """Replace the blanket rules; returns the correspondents the rules in force taught,
        to be weighed again. Raises :class:`ConfigError` for a rule that is not valid; the
        rules in use then stay as they were."""
        book, self._sender_rules = rule_books(rules)
        self._rule_for = book.match if book else None
        ruled, self.ruled = self.ruled, set()
        self.forget_verdicts()
        return ruled

    def allowed_for_sender(self, sender: str, judgement: DomainVerdict) -> DomainVerdict | None:
        """The verdict of an allow rule that names ``sender`` (its address or domain) and
        covers the judged domain; ``None`` when no such rule does."""
        if not self._sender_rules:
            return None
        try:
            domain = parse_domain(judgement.domain)
        except InvalidAddress:
            return None  # a bare host: no rule covers it
        rule = self._sender_rules.match(sender, domain)
        if rule is None:
            return None
        message = (
            rule.message
            or f"{judgement.domain} is allowed for {sender} by your organisation's rules."
        )
        return DomainVerdict(
            judgement.domain, Action.ALLOW, reasons.ALLOWED_RULE, message, rule=_rule(rule)
        )

    def slip_like(self, domain: str) -> bool:
        """Whether ``domain`` is a slip (likely or possible) of a domain this judge knows,
        whatever the rules allow. Raises :class:`InvalidAddress`."""
        judged = self.verdict(domain)
        if judged.reason == reasons.ALLOWED_RULE:
            judged = self.fresh_verdict(judged.domain, ruled=False)
        return judged.action is not Action.ALLOW

    def likely(self, judgement: DomainVerdict) -> bool:
        """A likely slip (not only a possible one) of a domain this judge knows."""
        return (
            judgement.action is not Action.ALLOW and judgement.score >= self.config.model.reject_at
        )

    def of_protected(self, verdict: DomainVerdict) -> bool:
        """Whether a slip looks like a protected domain: typogate never teaches itself to let
        mail go to such a look-alike (an admin's allow rule does that, on purpose)."""
        return any(
            self.under_protected(meant)
            for meant in (verdict.suggestion, *verdict.alternatives)
            if meant is not None
        )

    def under_protected(self, name: str) -> bool:
        """Whether ``name`` is a protected domain or under one."""
        return any(meant in self.protected for meant in and_parents(parse_domain(name).ascii))

    def weight(self, tie: Tie, now: float) -> float:
        """The organisation's evidence for a domain, each kind weighed, faded with age."""
        evidence = tie.sent + RECEIVED_WEIGHT * tie.received + RELEASED_WEIGHT * tie.released
        return evidence * tie.fade(now, self.relationships.half_life)

    def weight_of(self, domain: Domain, now: float) -> float:
        """:meth:`weight` of the organisation's tie to ``domain`` (0 without one)."""
        tie = self.relationships.tie(ORGANISATION, domain.unicode)
        return self.weight(tie, now) if tie is not None else 0.0

    def log_prior(self, meant: Domain) -> float:
        """The prior log-odds that an intended domain was meant, against a never-seen one."""
        if meant.ascii in self.protected:
            return LOG_PRIOR_PROTECTED
        if meant not in self.index:  # made by the index: an unlisted host, under a protected one
            host = UNLISTED_HOST_NATS_PER_CHAR * len(meant.subdomain)
            return LOG_PRIOR_PROTECTED - LOG_PRIOR_UNLISTED_HOST - host
        return LOG_PRIOR_KNOWN + history_nats(self.weight_of(meant, time.time()))

    def fresh_verdict(self, text: str, *, ruled: bool = True) -> DomainVerdict:
        """The verdict for a domain text, not cached; with ``ruled`` false, the model's
        alone: no rule, and nothing learned only because a rule allowed it."""
        # The verdict is cached by this text: read once, here or by verdict_of's caller.
        domain = self._read.get(text) or _parse_host(text)
        name = domain.unicode
        rule = self._rule_for(domain) if self._rule_for and ruled else None
        if rule is not None and rule.action is Action.ALLOW:
            message = rule.message or f"{name} is allowed by your organisation's rules."
            return DomainVerdict(
                name, Action.ALLOW, reasons.ALLOWED_RULE, message, rule=_rule(rule)
            )
        if rule is None:
            if domain.ascii in self.protected:
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
                return self.decide(domain, siblings, tuple(siblings))
        # A real domain under a blocking rule (gmail.com under a rule on .com) is blocked as
        # written: it is no slip, so no other domain is offered in its place.
        real = rule is not None and (
            domain.ascii in self.protected
            or domain in self.index
            or ("." in domain.name and self._indexed_parent(domain) is not None)
        )
        candidates = () if real else self._hypotheses(domain)
        likely = [c for c in candidates if c.log_odds >= LOG_ODDS_FLOOR]
        if rule is not None:
            return self._blocked(domain, rule, likely, candidates)
        judged = self.decide(domain, likely, candidates)
        if judged.reason == reasons.ALLOWED_UNLIKELY and (domain.subdomain or "-" in name):
            judged = self.named_in_front(domain, judged)
        if judged.reason == reasons.ALLOWED_UNLIKELY and not name.isascii():
            return self._read_in_latin(domain, judged)
        return judged

    def named_in_front(
        self,
        domain: Domain,
        judged: DomainVerdict,
        seen: Domain | None = None,
        written: str | None = None,
    ) -> DomainVerdict:
        """``judged``, the model's pass, or where the name begins with a domain we protect
        or write to, a host of one, or a slip of one, in front of another registrable
        domain, a look-alike: its reader takes ``army.mil.evil.com`` (or
        ``gmial.com.evil.com``) for ``army.mil`` (``gmail.com``), and the mail goes to
        ``evil.com``; so too where the name ends at a hyphen (``gmail.com-secure.net``),
        where a label in front is such a domain with its dot left out or a hyphen for it
        (``army-mil.evil.com``), and where a name we know stands after a word and a hyphen
        (``login-army.mil.evil.com``, ``secure-army-mil.com``). ``seen`` is the name as
        its reader sees it where that differs from ``domain`` (``aoI.com.evil.com``,
        ``written``, reads as ``aol.com.evil.com``); a slip in that reading is not looked
        for, a reading being a guess already."""
        name = (seen or domain).name
        written = written or domain.unicode
        judging = 0 if seen is not None else MAX_FRONTS_JUDGED
        for start, end in fronts(name):  # army.mil, mail.army.mil, ..., army.mil of login-
            if start and not self._may_hold(name[start:end]):
                continue  # only a name we know is looked for after a hyphen
            try:  # parsed once: a hostile name's many beginnings are kept out of the cache
                front = parse_once(name[start:end])
            except InvalidAddress:
                continue  # com.br: a suffix alone, no one's name
            # army.ml, where .ml is a suffix: judged as a name of its own, a few at most.
            slips = not start and judging > 0 and is_real_suffix(front.suffix)
            judging -= slips
            shows = "holds" if start else "begins with"
            found = self._named(domain, judged, front, written, shows=shows, slips=slips)
            if found is not None:
                return found
        return self._merged_in_front(domain, judged, name, written, judging) or judged

    def _merged_in_front(
        self, domain: Domain, judged: DomainVerdict, name: str, written: str, judging: int
    ) -> DomainVerdict | None:
        """The look-alike's verdict where a label in front of the registrable domain, or
        hyphen-separated words of one of the first labels of ``name`` (the domain before
        its suffix), is a domain we protect or write to, or a host of one, with its dot
        left out or a hyphen for it (``gmailcom.evil.com``, the phisher's
        ``army-mil.evil.com``, ``army-mil-login.com`` and ``secure-army-mil.com``), as
        ``armymil.com`` is that name typed whole under a suffix; or, for the first
        ``judging`` such names at a label's beginning, a likely or possible slip of one
        (``gmial-com.evil.com``); ``None`` otherwise."""
        # Every name exactly first: armymil is army.mil, before armym.il is a slip of it.
        # A slip only where a hyphen stands for the dot: most labels end in two letters
        # that are some country's suffix, and judging each reading costs a tenth of a ms.
        exactly: list[_Reading] = []
        slipped: list[_Reading] = []
        for piece, inside in pieces(name):
            for joined, how in unmerged(piece):
                slip = not inside and how == FOR_ITS_DOT and len(slipped) < judging
                # A name of one label and a suffix: a domain we know only if indexed so.
                if not slip and not self._may_hold(joined, registrable=True):
                    continue
                with suppress(InvalidAddress):
                    front = parse_once(joined)
                    exactly.append((front, piece, how, inside, False))
                    if slip:
                        slipped.append((front, piece, how, inside, True))
        for front, piece, how, inside, slips in (*exactly, *slipped):
            found = self._named(
                domain,
                judged,
                front,
                written,
                shows="holds" if inside else "begins with",
                begins=f"{piece}, {front.unicode} with {how}",
                slips=slips,
            )
            if found is not None:
                return found
        return None

    def named_in_local_part(
        self, domain: Domain, judged: DomainVerdict, local: str
    ) -> DomainVerdict:
        """``judged``, the verdict on where mail to ``local@domain`` goes, or where the
        model passed it and the local part is an address at a domain we protect or write
        to, or at a slip of one, a look-alike: its reader takes ``"john@army.mil"@evil.com``
        for ``john@army.mil``, and the mail goes to ``evil.com``. The local part is read
        as a display name is (:func:`addresses_seen`)."""
        written = external_form(f"{local}@{domain.unicode}")  # quoted, as its sender wrote it
        return self._named_in_text(domain, judged, local, written, "begins with")

    def named_in_display_name(
        self, domain: Domain, judged: DomainVerdict, address: str, shown: str
    ) -> DomainVerdict:
        """``judged``, the verdict on where mail to ``address`` goes (to ``domain``), or
        where the model passed it and the display name it is ``shown`` under names an
        address at a domain we protect or write to, or at a slip of one, a look-alike: a
        reply to mail whose Reply-To is ``"ceo@army.mil" <ceo@evil.com>`` shows its reader
        ceo@army.mil, and goes to ``evil.com``."""
        return self._named_in_text(domain, judged, shown, address, "is shown as")

    def _named_in_text(
        self, domain: Domain, judged: DomainVerdict, text: str, written: str, shows: str
    ) -> DomainVerdict:
        """``judged``, or where the model passed it, the look-alike of the first address
        a reader sees in ``text`` at a domain we protect or write to, or at a slip of one,
        other than ``domain`` itself (a mail program may show the address as its name).
        A correspondent learned from deliveries alone is read so too: mail that this rule
        stops may have been delivered to it as far as an adapter that saw no header knew
        (the policy service, beside the milter), and it never wrote back."""
        if judged.reason != reasons.ALLOWED_UNLIKELY and not self._unproven(domain, judged):
            return judged
        for person, host in addresses_seen(text):
            for front in as_read(host):
                if front.ascii == domain.ascii:
                    continue
                found = self._named(domain, judged, front, written, person=person, shows=shows)
                if found is not None:
                    return found
        return judged

    def _named(
        self,
        domain: Domain,
        judged: DomainVerdict,
        front: Domain,
        written: str,
        *,
        person: str | None = None,
        shows: str = "begins with",
        begins: str | None = None,
        slips: bool = True,
    ) -> DomainVerdict | None:
        """The look-alike's verdict where ``front``, which ``written`` ``shows`` (as
        ``begins`` where given; after ``person`` and an @-sign, where given) while the
        mail goes to ``domain``, is a domain we protect or write to, a host of one, or,
        with ``slips``, a likely or possible slip of one as the model judges it alone;
        ``None`` otherwise. The action is the one for a likely slip, or for that slip, at
        the risk of where the mail goes."""
        owner = front
        if front.subdomain and not self._indexed(front):  # chn.dell.com, known itself
            owner = parse_once(front.registrable)
        model = self.config.model
        edits: tuple[str, ...] = ()  # the slip's, where the front is one
        if self._indexed(owner):
            meant, score = front.unicode, 1.0
            protected = owner.ascii in self.protected
            seen = SEEN_REAL[reasons.ALLOWED_PROTECTED if protected else reasons.ALLOWED_KNOWN]
            if owner is not front:
                seen = f"a host of {owner.unicode}, {seen}"
        elif slips:
            likely = [c for c in self._hypotheses(front) if c.log_odds >= LOG_ODDS_FLOOR]
            score = _probability(likely) if likely else 0.0
            if score < model.warn_at:
                return None
            meant, edits, seen = likely[0].domain, likely[0].edits, ""
        else:
            return None
        begins, said, goes = begins or front.unicode, meant, domain.registrable
        if person is not None:  # an address: what the reader takes it for is no domain
            begins, said, goes = f"{person}@{begins}", f"{person}@{meant}", domain.unicode
            if seen:
                seen = f"an address at {front.unicode}, {seen}"
        if not seen:
            level = "likely" if score >= model.reject_at else "possible"
            seen = f"a {level} slip of {said} ({'; '.join(edits)})"
        risk = self._risk(domain)
        typo, possible_typo = self._actions(risk)
        return DomainVerdict(
            domain.unicode,
            typo if score >= model.reject_at else possible_typo,
            Slip.CONFUSABLE.value,
            f"{printable_form(written)} {shows} {begins}, {seen}, but goes to {goes}, "
            f"a domain of its own. Did you mean {said}?",
            suggestion=None if person is not None else meant,
            score=score,
            edits=(*edits, f"{begins} in front of {goes}"),
            risk=risk,
            candidates=judged.candidates,
        )

    def _read_in_latin(self, domain: Domain, judged: DomainVerdict) -> DomainVerdict:
        """``judged``, the model's pass for a Unicode ``domain``, or, where it reads as Latin
        letters, the look-alike's verdict on the strictest way it reads (``аррӏе.co``:
        ``appie.co``, a possible slip of ``apple.com``, and ``apple.co``, a likely one)."""
        strictest = judged
        for seen_text in latin_readings(domain.unicode):
            try:
                seen = self.verdict(seen_text)
            except InvalidAddress:
                continue  # æ reads as ae: a label of them may read longer than any can be
            look_alike = self.seen_as(domain, judged, domain.unicode, seen)
            if look_alike is not None and severity(look_alike.action) > severity(strictest.action):
                strictest = look_alike
        return strictest

    def _siblings(self, domain: Domain, parent: str) -> list[Candidate]:
        """Listed domains under the same ``parent`` that ``domain`` is a likely slip of
        (usamriid.army.mil for usmariid.army.mil): a subdomain of a listed domain is allowed
        unless it looks like a mistake for one of its listed siblings."""
        under = "." + parent
        host = domain.unicode.removesuffix(under)
        # Short host names are dense (most three-letter ones under a big parent are real),
        # and hosts that differ only in their numbers are numbered siblings (101arw, 102arw).
        # Short: the label the slip is in, not the host's first (api of a deep host whose
        # long label below it has the slip).
        siblings = []
        for c in self._hypotheses_for(domain, "", 0.0):
            sibling = c.domain.removesuffix(under)
            if not c.domain.endswith(under) or numbered_siblings(sibling, host):
                continue
            c = c._replace(log_odds=c.log_odds - novelty_nats(_departing_label(host, sibling)))
            if c.log_odds >= LOG_ODDS_FLOOR:
                siblings.append(c)
        # Best first again, as decide() reads them: each lost its own label's novelty.
        return best_first(siblings)

    def _unproven(self, domain: Domain, judged: DomainVerdict) -> bool:
        """Whether ``judged`` allows ``domain`` as a correspondent learned from deliveries
        alone, which has had no reply, release or rule since."""
        if judged.reason != reasons.ALLOWED_KNOWN or domain not in self.from_deliveries:
            return False
        tie = self.relationships.tie(ORGANISATION, domain.unicode)
        return tie is None or tie.outbound_only

    def _may_hold(self, text: str, *, registrable: bool = False) -> bool:
        """Whether ``text``, a name not yet parsed, may be a domain we protect or write
        to, or (unless it is ``registrable``, a name of one label and a suffix) a host of
        one: it, or an ending of it at a dot, is indexed; or, not ASCII (its A-label form
        not at hand), it ends in a real suffix."""
        if not text.isascii():
            return is_real_suffix(text.rpartition(".")[2])
        if registrable:
            return self.index.holds(text)
        labels = text.split(".")
        return any(self.index.holds(".".join(labels[at:])) for at in range(len(labels) - 1))

    def _indexed(self, domain: Domain, ruled: bool = True) -> bool:
        """Whether ``domain`` is protected or known; with ``ruled`` false, not counting
        what was learned only because an allow rule let it be."""
        return domain in self.index and (ruled or domain not in self.ruled)

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
        novelty = novelty_nats(domain.name)
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
        for meant in self.index.candidates(typed, self.max_edits):
            prior = self.log_prior(meant)
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
        return tuple(
            best_first(
                candidate(suggestion, log_odds, explanation)
                for suggestion, (log_odds, explanation) in best.items()
            )
        )

    def _risk(self, domain: Domain) -> Risk:
        """A leak, unless the slip stays where no stranger can receive it: a closed registry
        (``model.closed_suffixes``), a suffix that is no real one, or a subdomain of a
        protected domain."""
        suffix = domain.suffix
        if self._closed(suffix):
            return Risk.MISDELIVERY  # whoever receives it there is inside the registry
        state = self._mail_states.get(domain.ascii)
        if state is not None and state.accepts_mail:
            return Risk.LEAK
        if state in _BOUNCES:
            return Risk.MISDELIVERY
        if not is_real_suffix(suffix):
            return Risk.MISDELIVERY
        labels = domain.ascii.split(".")
        if any(".".join(labels[cut:]) in self.protected for cut in range(1, len(labels))):
            return Risk.MISDELIVERY
        return Risk.LEAK

    def _closed(self, suffix: str) -> bool:
        """Whether ``suffix`` is in a registry nobody else can register in
        (``model.closed_suffixes``)."""
        closed = self.config.model.closed_suffixes
        return any(suffix == name or suffix.endswith("." + name) for name in closed)

    def _unholdable(self, domain: Domain) -> str | None:
        """The reason code when no one can hold ``domain``, else ``None``: it is under no
        top-level domain (nor a private-use name), or it is a name in letters outside ASCII
        under a closed registry, which gives out ASCII names only (.gov and .mil do)."""
        if _nowhere(domain):
            return reasons.TYPO_NO_SUCH_SUFFIX
        if not domain.name.isascii() and self._closed(domain.suffix):
            return reasons.TYPO_NO_SUCH_NAME
        return None

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

    def decide(
        self,
        domain: Domain,
        likely: list[Candidate],
        candidates: tuple[Candidate, ...] = (),
        because: str = "",
    ) -> DomainVerdict:
        """The verdict from the hypotheses that matter (``likely``, best first); ``because``
        is said after the explanation of an alert."""
        name = domain.unicode
        if not likely and (spoof := self._spoof(domain, None, candidates)) is not None:
            return spoof
        if not likely and (why := self._unholdable(domain)) is not None:
            return self._unholdable_verdict(domain, why, None, candidates)
        if not likely:
            return DomainVerdict(
                name,
                Action.ALLOW,
                reasons.ALLOWED_UNLIKELY,
                f"{name} does not look like a mistake for a domain you protect or write to.",
                candidates=candidates,
            )
        return self._alert(name, likely, candidates, because, domain)

    def host_verdict(self, host: str) -> DomainVerdict | None:
        """The verdict on a bare host name (no dot in it) that spells a domain this judge
        knows with its dots left out (``gmailcom``) or its suffix left off (``gmail``);
        ``None`` for any other host (``mailhub``, ``localhost``, an address literal). No
        stranger receives mail at a bare host: such a slip is a misdelivery."""
        if "." in host or host.startswith("[") or host in SPECIAL_USE:
            return None
        # A short bare name is likelier a host of the network's own (mail, army), as a
        # short domain name is likelier real.
        novelty = novelty_nats(host)
        found = []
        for meant in self.index.spelled_as_host(host):
            prior = self.log_prior(meant)
            explanation = explain_host(host, meant, budget=prior - novelty - LOG_ODDS_FLOOR)
            if explanation is not None:
                log_odds = prior - explanation.cost - novelty
                found.append(candidate(meant.unicode, log_odds, explanation))
        likely = best_first(c for c in found if c.log_odds >= LOG_ODDS_FLOOR)
        return self._alert(host, likely, (), "", None) if likely else None

    def _alert(
        self,
        name: str,
        likely: list[Candidate],
        candidates: tuple[Candidate, ...],
        because: str,
        domain: Domain | None,
    ) -> DomainVerdict:
        """The verdict on ``name`` from the hypotheses that matter (``likely``, best first):
        allowed below ``model.warn_at``, else the action for its risk. ``domain`` is ``None``
        for a bare host name, which only its own network can route: a misdelivery."""
        score = _probability(likely)
        top = likely[0]
        model = self.config.model
        reject_at, warn_at = model.reject_at, model.warn_at
        state = self._mail_states.get(domain.ascii) if domain is not None else None
        live = state is not None and state.accepts_mail
        if live:
            # A look-alike with a mail server receives what is sent there: act a step sooner.
            reject_at, warn_at = warn_at, warn_at * LIVE_LOOKALIKE_FACTOR
        # A twin never makes a name pass, or only warned, that would be stopped with none.
        if score < reject_at and domain is not None:
            meant = top if score >= warn_at else None
            if (spoof := self._spoof(domain, meant, candidates)) is not None:
                return spoof
        if score < warn_at and domain is not None and (why := self._unholdable(domain)) is not None:
            return self._unholdable_verdict(domain, why, top, candidates)
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
        risk = self._risk(domain) if domain is not None else Risk.MISDELIVERY
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

    def _spoof(
        self, domain: Domain, meant: Candidate | None, candidates: tuple[Candidate, ...]
    ) -> DomainVerdict | None:
        """The verdict on a name with a label that mixes Latin letters with look-alikes of
        another script (``армy.mil``), which no registry gives out: the action for a likely
        slip, near a domain we know or not (``meant`` names a possible one). ``None`` for
        any other name."""
        name = domain.unicode
        label = mixed_script_label(name)
        if label is None:
            return None
        risk = self._risk(domain)
        ask = f"Did you mean {meant.domain}?" if meant is not None else "Check the address."
        return DomainVerdict(
            name,
            self._actions(risk)[0],
            Slip.CONFUSABLE.value,
            f"{name} mixes Latin letters with look-alike letters of another script in "
            f"{label!r}, a spoofing trick. {ask}",
            suggestion=meant.domain if meant is not None else None,
            score=1.0,
            edits=meant.edits if meant is not None else (),
            risk=risk,
            candidates=candidates,
        )

    def seen_as(
        self, domain: Domain, verdict: DomainVerdict, written: str, seen: DomainVerdict
    ) -> DomainVerdict | None:
        """The verdict on ``domain``, which the model passed (``verdict``), where its reader
        sees another (``seen``, that one's verdict), or ``None`` where what the reader sees
        is neither a domain we protect or write to nor a slip of one. ``written`` is the
        domain as typed: ``aoI.com``, which goes to ``aoi.com`` and reads as ``aol.com``,
        or ``аррӏе.co``, which reads as ``apple.co``, a slip of ``apple.com``."""
        real = seen.reason in SEEN_REAL
        slip = (
            seen.rule == "model" and seen.suggestion is not None and seen.action is not Action.ALLOW
        )
        if not (real or slip):
            return None  # most readings: decided before any risk is weighed
        risk = self._risk(domain)
        likely, possible = self._actions(risk)
        edits: tuple[str, ...]
        seen_text = as_seen(written)
        if seen_text is not None:  # a letter that goes as another: aoI.com, weƄ.de
            character, letter = read_as(written, seen_text)
            edit = f"{character!r} looks like {letter!r}"
            how = "a capital I looks like an l" if character == "I" else edit
            goes = f", {SEEN_REAL[verdict.reason]}" if verdict.reason in SEEN_REAL else ""
            name = f"{written} goes to {domain.unicode}{goes}, but"
        else:
            how, edit = "its letters pass for Latin ones", "letters that pass for Latin ones"
            name = domain.unicode
        if real:
            # Where it goes is real too (dIa.mil goes to dia.mil and reads as dla.mil): the
            # sender may mean either, so only a warning.
            action = possible if verdict.reason in SEEN_REAL else likely
            meant, edits = seen.domain, (edit,)
            reads = f"{seen.domain}, {SEEN_REAL[seen.reason]}"
        else:
            assert seen.suggestion is not None  # a slip names what it is a slip of
            # As likely a slip as the same slip typed in Latin letters.
            likely_slip = seen.action is self._actions(seen.risk or risk)[0]
            action = likely if likely_slip else possible
            meant, edits = seen.suggestion, (edit, *seen.edits)
            reads = f"{seen.domain}, which looks like a mistake for {meant}"
        return DomainVerdict(
            domain.unicode,
            action,
            Slip.CONFUSABLE.value,
            f"{name} reads as {reads}: {how}. Did you mean {meant}?",
            suggestion=meant,
            score=1.0 if seen.reason in SEEN_REAL else seen.score,
            edits=edits,
            risk=risk,
            candidates=verdict.candidates,
        )

    def _unholdable_verdict(
        self,
        domain: Domain,
        why: str,
        meant: Candidate | None,
        candidates: tuple[Candidate, ...],
    ) -> DomainVerdict:
        """cmsp4.con, af.m, irś.gov: a name no one can hold (``why``, from :meth:`_unholdable`),
        and no likely slip of one we know (``meant`` names the likeliest, if any). Only a
        possible slip (a warning, by default): a network may route a name of its own (an
        allow rule says so)."""
        name = domain.unicode
        ask = f"Did you mean {meant.domain}?" if meant is not None else "Check the address."
        if why == reasons.TYPO_NO_SUCH_SUFFIX:
            held = "which is no top-level domain: mail to it can only bounce"
        else:
            held = (
                "whose registry gives out names in ASCII letters only: no one holds it, "
                "and mail to it can only bounce"
            )
        return DomainVerdict(
            name,
            self._actions(Risk.MISDELIVERY)[1],
            why,
            f"{name} is under .{domain.suffix}, {held}. {ask}",
            suggestion=meant.domain if meant is not None else None,
            score=1.0,
            edits=meant.edits if meant is not None else (),
            risk=Risk.MISDELIVERY,
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


def and_parents(name: str) -> Iterator[str]:
    """``name`` and every domain it is under, down to two labels (``a.b.army.mil``,
    ``b.army.mil``, ``army.mil``)."""
    labels = name.split(".")
    for cut in range(len(labels) - 1):
        yield ".".join(labels[cut:])


def _departing_label(host: str, sibling: str) -> str:
    """The label of ``host`` where it departs from ``sibling``, read from the right (the
    first, when one ends the other)."""
    for typed, listed in zip(reversed(host.split(".")), reversed(sibling.split(".")), strict=False):
        if typed != listed:
            return typed
    return host.partition(".")[0]


def novelty_nats(name: str) -> float:
    """The nats by which a short name (a domain's, dots not counted, or a host's) is likelier
    meant as written: most are real."""
    length = len(name) - name.count(".")
    return SHORT_NAME_NATS * max(0, SHORT_NAME - length)


def history_nats(weight: float) -> float:
    """What a learned correspondent's evidence adds to its prior: the log of its weight."""
    return min(LOG_PRIOR_HISTORY_MAX, math.log1p(weight)) if weight > 0 else 0.0


def best_first(hypotheses: Iterable[Candidate]) -> list[Candidate]:
    """Hypotheses in the order :meth:`DomainJudge.decide` reads them: likeliest first,
    equally likely ones in name order (the same answer on every run)."""
    return sorted(hypotheses, key=lambda c: (-c.log_odds, c.domain))


def candidate(suggestion: str, log_odds: float, explanation: Explanation) -> Candidate:
    """The hypothesis that ``suggestion`` was meant, as a verdict reports it."""
    return Candidate(
        suggestion,
        log_odds,
        explanation.reason.value,
        tuple(edit.detail for edit in explanation.edits),
    )


def numbered_siblings(one: str, other: str) -> bool:
    """Whether two host names are one name numbered differently: other numbers in the same
    places (``101arw``, ``102arw``) or a number added at an end (``afms``, ``afms2``). A digit
    inside a word is a slip (``afce2e`` for ``afcee``), and a name with several numbers, one
    inside a word, is a code whose digits are letters like the others (``6ed9cit4q``:
    ``7ed9cit4q`` is a slip of it; ``g2xmail`` still numbers a series). The same numbers
    written differently are no series but a slip (``s337`` for ``s0337``: a zero left out).
    A code is numbered only at the end of a label (``pentc9asdocspu1``, ``pentc9asdocspu3``:
    the hosts of a series, whatever digits their name has inside)."""
    if _code(one) or _code(other):
        return _numbered_alike(one, other, _LABEL_END_DIGITS, _LABEL_END_DIGITS)
    return _numbered_alike(one, other, _DIGITS, _END_DIGITS)


def _numbered_alike(one: str, other: str, numbers: re.Pattern, ends: re.Pattern) -> bool:
    """Whether ``one`` and ``other`` differ only in their ``numbers``, each in the same
    place, or by a number at one of their ``ends``; not when their numbers are equal."""
    if [int(n) for n in numbers.findall(one)] == [int(n) for n in numbers.findall(other)]:
        return False
    return numbers.sub("#", one) == numbers.sub("#", other) or (
        ends.sub("", one) == ends.sub("", other)
    )


def _parse_host(text: str) -> Domain:
    """A domain as Postfix maps it before delivering (UTS #46): the characters it ignores
    (U+200B, U+00AD, U+FEFF) gone, full-width letters narrowed, as :func:`host_name` does
    for an address; a log names the domain as it was typed."""
    return parse_once(text if text.isascii() else host_name(text))


def _nowhere(domain: Domain) -> bool:
    """Whether ``domain`` is under no top-level domain, nor under a private-use name."""
    return not is_real_suffix(domain.suffix) and domain.suffix not in SPECIAL_USE


def _code(name: str) -> bool:
    return len(_DIGITS.findall(name)) > 1 and _INSIDE_DIGITS.search(name) is not None


def _rule(rule: Rule) -> str:
    return f"{RULED}{rule.target}"


def _probability(hypotheses: list[Candidate]) -> float:
    """P(the typed domain is a mistake): softmax of every hypothesis against "meant as typed"."""
    top = hypotheses[0].log_odds
    if top > 30:  # exp would not change the answer, only overflow
        return 1.0
    mass = sum(math.exp(h.log_odds) for h in hypotheses)
    return mass / (1.0 + mass)
