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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from typogate.config import Config, Rule
from typogate.domains import (
    MIN_EDIT_COST,
    CandidateIndex,
    Domain,
    Explanation,
    InvalidAddress,
    Slip,
    explain,
    mixed_script_label,
    parse_address,
    parse_domain,
)
from typogate.errors import ConfigError
from typogate.policy import verdict as reasons
from typogate.policy.lists import Listed, domain_lists
from typogate.policy.rules import RuleBook
from typogate.policy.verdict import DomainVerdict, Verdict
from typogate.vocabulary import Action

# Log prior odds, in nats, of an intended domain against a never-seen domain of ordinary length.
LOG_PRIOR_PROTECTED = 12.0
# A known domain is real but, without history, hardly likelier than any other real domain:
# its near-twins are mostly other real domains (franklinma.gov, franklinpa.gov).
LOG_PRIOR_KNOWN = 4.0
# A learned correspondent's prior grows with the mail sent to it (ln of the count), up to
# this much more: a near-twin of a domain written to a thousand times is a strong signal.
LOG_PRIOR_HISTORY_MAX = 7.0
# Allowed deliveries to a domain before it counts as a correspondent (it was not a slip).
CORRESPONDENT_MIN_MAILS = 3
# A never-seen name shorter than this many characters is likelier to be real, per missing char:
# nearly every two- or three-letter name is registered somewhere.
SHORT_NAME = 6
SHORT_NAME_NATS = 2.0
# Hypotheses below these log-odds (odds of 1:4.5) barely move a decision: not even scored.
LOG_ODDS_FLOOR = -1.5
# Two candidates closer than this (a likelihood ratio of 2) are reported as ambiguous.
AMBIGUITY_NATS = math.log(2.0)

_parse = parse_domain.__wrapped__  # for texts parsed once: kept out of the hot cache
_FAST_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@dataclass(frozen=True, slots=True)
class _Hypothesis:
    suggestion: str
    log_odds: float
    explanation: Explanation


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
            self._index = CandidateIndex(known, protected=protected)
        self.profile = lists.profile
        self._protected = frozenset(domain.ascii for domain in protected)
        self._mails: dict[str, int] = {}  # learned: allowed deliveries per domain (ascii)
        # No slip costs less than MIN_EDIT_COST nats, so more edits than this cannot matter.
        best_prior = max(LOG_PRIOR_PROTECTED, LOG_PRIOR_KNOWN + LOG_PRIOR_HISTORY_MAX)
        self._max_edits = int((best_prior - LOG_ODDS_FLOOR) // MIN_EDIT_COST)
        rules = RuleBook(self.config.rules)
        self._rule_for = rules.match if rules else None  # most configurations have none
        self._judge = lru_cache(maxsize=cache_size)(self._judge_domain)

    @property
    def domain_count(self) -> int:
        """How many protected and known domains the index holds."""
        return len(self._index)

    def evaluate(self, recipient: str, sender: str | None = None) -> Verdict:
        """Judge one recipient address. Raises :class:`InvalidAddress` for bad syntax."""
        at = recipient.rfind("@")
        if 0 < at <= 64 and _FAST_LOCAL.fullmatch(recipient, 0, at):
            judgement = self._judge(recipient[at + 1 :])
        else:
            parsed = parse_address(recipient)
            recipient = f"{parsed.local}@{parsed.domain.unicode}"
            judgement = self._judge(parsed.domain.ascii)
        if (
            sender
            and judgement.action is not Action.ALLOW
            and self._same_domain(sender, judgement.domain)
        ):
            judgement = DomainVerdict(
                judgement.domain,
                Action.ALLOW,
                reasons.ALLOWED_OWN_DOMAIN,
                f"{judgement.domain} is the sender's own domain.",
                rule="own-domain",
            )
        return Verdict(recipient, judgement)

    def learn(self, counts: dict[str, int]) -> None:
        """Take in learned history: allowed deliveries per recipient domain (ascii or Unicode).

        A domain with at least ``CORRESPONDENT_MIN_MAILS`` becomes a known correspondent (never
        flagged, and a candidate whose near-twins are flagged); more mail raises its prior.
        Clears the verdict cache, so call it with batches, not per message.
        """
        for text, count in counts.items():
            try:
                domain = parse_domain(text)
            except InvalidAddress:
                continue
            total = self._mails.get(domain.ascii, 0) + count
            self._mails[domain.ascii] = total
            if total >= CORRESPONDENT_MIN_MAILS:
                self._index.add(domain)
        self._judge.cache_clear()

    def use_rules(self, rules: list[Rule]) -> None:
        """Replace the blanket rules (the configuration's and the web's, in that order).

        Raises :class:`ConfigError` for a rule whose suffix or domain is not valid; the rules
        in use then stay as they were.
        """
        book = RuleBook(rules)
        self._rule_for = book.match if book else None
        self._judge.cache_clear()

    def judge_domain(self, domain: str) -> DomainVerdict:
        """Judge a bare domain (cached). Raises :class:`InvalidAddress` for a bad domain."""
        return self._judge(domain)

    @staticmethod
    def _same_domain(sender: str, domain: str) -> bool:
        try:
            return parse_address(sender).domain.unicode == domain
        except InvalidAddress:
            return False

    def _judge_domain(self, text: str) -> DomainVerdict:
        domain = _parse(text)  # the verdict is cached by this text: no second parse
        name = domain.unicode
        rule = self._rule_for(domain) if self._rule_for else None
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
            if domain in self._index:
                return DomainVerdict(
                    name,
                    Action.ALLOW,
                    reasons.ALLOWED_KNOWN,
                    f"{name} is a known correspondent.",
                    rule="known",
                )
            parent = self._indexed_parent(domain) if "." in domain.name else None
            if parent is not None:
                return DomainVerdict(
                    name,
                    Action.ALLOW,
                    reasons.ALLOWED_SUBDOMAIN,
                    f"{name} is under {parent}, a domain you write to.",
                    rule=f"subdomain:{parent}",
                )
        hypotheses = self._hypotheses(domain)
        if rule is not None:
            return self._blocked(name, rule, hypotheses)
        return self._decide(name, hypotheses)

    def _indexed_parent(self, domain: Domain) -> str | None:
        labels = domain.ascii.split(".")
        for cut in range(1, len(labels) - 1):
            parent = ".".join(labels[cut:])
            try:
                candidate = parse_domain(parent)
            except InvalidAddress:
                return None  # reached the public suffix
            if candidate in self._index:
                return candidate.unicode
        return None

    def _hypotheses(self, domain: Domain) -> list[_Hypothesis]:
        """Every intended domain worth considering, best first, one per suggestion."""
        length = len(domain.name) - domain.name.count(".")
        novelty = SHORT_NAME_NATS * max(0, SHORT_NAME - length)
        found = self._hypotheses_for(domain, "", novelty)
        if not found and domain.subdomain:
            # mail.army.ml: the slip may be in the registrable part alone.
            registrable = parse_domain(domain.registrable)
            found = self._hypotheses_for(registrable, domain.subdomain + ".", novelty)
        return found

    def _hypotheses_for(self, typed: Domain, prefix: str, novelty: float) -> list[_Hypothesis]:
        best: dict[str, _Hypothesis] = {}
        for meant in self._index.candidates(typed, self._max_edits):
            prior = self._log_prior(meant)
            explanation = explain(typed, meant, budget=prior - novelty - LOG_ODDS_FLOOR)
            if explanation is None:
                continue
            log_odds = prior - explanation.cost - novelty
            suggestion = prefix + meant.unicode
            held = best.get(suggestion)
            if held is None or held.log_odds < log_odds:
                best[suggestion] = _Hypothesis(suggestion, log_odds, explanation)
        # Equally likely hypotheses in name order: the same answer on every run.
        return sorted(best.values(), key=lambda h: (-h.log_odds, h.suggestion))

    def _log_prior(self, meant: Domain) -> float:
        if meant.ascii in self._protected:
            return LOG_PRIOR_PROTECTED
        mails = self._mails.get(meant.ascii, 0)
        if mails:
            return LOG_PRIOR_KNOWN + min(LOG_PRIOR_HISTORY_MAX, math.log1p(mails))
        return LOG_PRIOR_KNOWN

    def _decide(self, name: str, hypotheses: list[_Hypothesis]) -> DomainVerdict:
        if not hypotheses and (label := mixed_script_label(name)) is not None:
            return DomainVerdict(
                name,
                self.config.actions.typo,
                Slip.CONFUSABLE.value,
                f"{name} mixes Latin letters with look-alike letters of another script in "
                f"{label!r}, a spoofing trick; check the address.",
                score=1.0,
            )
        if not hypotheses:
            return DomainVerdict(
                name,
                Action.ALLOW,
                reasons.ALLOWED_UNLIKELY,
                f"{name} does not look like a mistake for a domain you protect or write to.",
            )
        score = _probability(hypotheses)
        top = hypotheses[0]
        edits = tuple(edit.detail for edit in top.explanation.edits)
        model = self.config.model
        if score >= model.reject_at:
            action = self.config.actions.typo
        elif score >= model.warn_at:
            action = self.config.actions.possible_typo
        else:
            return DomainVerdict(
                name,
                Action.ALLOW,
                reasons.ALLOWED_UNLIKELY,
                f"{name} is close to {top.suggestion} but more likely meant as written.",
                score=score,
                edits=edits,
            )
        rivals = tuple(
            h.suggestion for h in hypotheses[1:] if top.log_odds - h.log_odds < AMBIGUITY_NATS
        )
        if rivals:
            options = " or ".join((top.suggestion, *rivals))
            return DomainVerdict(
                name,
                action,
                reasons.TYPO_AMBIGUOUS,
                f"{name} looks like a mistake for {options}; check which one you meant.",
                suggestion=None,
                score=score,
                alternatives=(top.suggestion, *rivals),
                edits=edits,
            )
        how = "; ".join(edits)
        return DomainVerdict(
            name,
            action,
            top.explanation.reason.value,
            f"{name} looks like a mistake for {top.suggestion} ({how}). "
            f"Did you mean {top.suggestion}?",
            suggestion=top.suggestion,
            score=score,
            edits=edits,
        )

    def _blocked(self, name: str, rule: Rule, hypotheses: list[_Hypothesis]) -> DomainVerdict:
        code = reasons.BLOCKED_SUFFIX if rule.suffix is not None else reasons.BLOCKED_DOMAIN
        target = f".{rule.suffix}" if rule.suffix is not None else str(rule.domain)
        message = rule.message or f"Mail to {target} is blocked by your organisation's rules."
        suggestion = hypotheses[0].suggestion if hypotheses else None
        if suggestion is not None:
            message += f" Did you mean {suggestion}?"
        score = _probability(hypotheses) if hypotheses else 1.0
        return DomainVerdict(
            name, rule.action, code, message, suggestion=suggestion, score=score, rule=_rule(rule)
        )


def _rule(rule: Rule) -> str:
    return f"rule:{rule.target}"


def _probability(hypotheses: list[_Hypothesis]) -> float:
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
