"""What typogate decided about one recipient, and why."""

from __future__ import annotations

from typing import Any, NamedTuple

from typogate.domains.names import external_form
from typogate.vocabulary import Action, Risk

# Stable reason codes besides the typo classes of ``typogate.domains.Slip``; docs/reasons.md.
ALLOWED_PROTECTED = "allowed.protected"
ALLOWED_KNOWN = "allowed.known"
ALLOWED_SUBDOMAIN = "allowed.subdomain"
ALLOWED_OWN_DOMAIN = "allowed.own_domain"
ALLOWED_RELATIONSHIP = "allowed.relationship"
ALLOWED_OWN_HOST = "allowed.own_host"
ALLOWED_NO_DOMAIN_NAME = "allowed.no_domain_name"
ALLOWED_RULE = "allowed.rule"
ALLOWED_UNLIKELY = "allowed.no_likely_typo"
BLOCKED_DOMAIN = "blocked.domain"
BLOCKED_SUFFIX = "blocked.suffix"
TYPO_AMBIGUOUS = "typo.ambiguous"
TYPO_LIVE_LOOKALIKE = "typo.live_lookalike"
TYPO_NO_SUCH_SUFFIX = "typo.no_such_suffix"
TYPO_NO_SUCH_NAME = "typo.no_such_name"


class Candidate(NamedTuple):
    """A domain the sender may have meant, with the log-odds (nats) that they did, for the
    organisation as a whole."""

    domain: str
    log_odds: float
    reason: str
    edits: tuple[str, ...]


class DomainVerdict(NamedTuple):
    """The judgement on a recipient domain; every recipient at that domain shares it
    (a sender's own relationships may change it for that sender's mail).

    ``risk`` says, for a slip, whether it can leak to a stranger or only bounce;
    ``candidates`` are the intended domains that were weighed, likeliest first.
    """

    domain: str
    action: Action
    reason: str
    explanation: str
    suggestion: str | None = None
    score: float = 0.0
    rule: str = "model"
    alternatives: tuple[str, ...] = ()
    edits: tuple[str, ...] = ()
    risk: Risk | None = None
    candidates: tuple[Candidate, ...] = ()


class Verdict(NamedTuple):
    """typogate's answer for one recipient.

    ``action`` is what to do, ``reason`` a stable code (``typo.suffix``, ``blocked.suffix``,
    ...), ``explanation`` a sentence for the sender, ``suggestion`` the domain typogate
    believes was meant (``army.mil``) or ``None``, ``score`` the probability that the domain
    is a mistake, ``rule`` what decided (``model``, ``protected``, ``rule:suffix:ml``, ...).
    """

    recipient: str
    judgement: DomainVerdict

    @property
    def domain(self) -> str:
        return self.judgement.domain

    @property
    def action(self) -> Action:
        return self.judgement.action

    @property
    def reason(self) -> str:
        return self.judgement.reason

    @property
    def explanation(self) -> str:
        return self.judgement.explanation

    @property
    def suggestion(self) -> str | None:
        return self.judgement.suggestion

    @property
    def score(self) -> float:
        return self.judgement.score

    @property
    def rule(self) -> str:
        return self.judgement.rule

    @property
    def alternatives(self) -> tuple[str, ...]:
        return self.judgement.alternatives

    @property
    def risk(self) -> Risk | None:
        """For a slip: a leak (a stranger can receive it) or a misdelivery (it can only
        bounce); None when nothing looks wrong."""
        return self.judgement.risk

    @property
    def suggested_recipient(self) -> str | None:
        """The recipient address at the suggested domain (``john@army.mil``), written as a
        sender writes it (``"john doe"@army.mil``); ``None`` without a suggestion, or when
        what was judged is a bare domain, not an address."""
        local, at, _ = self.recipient.rpartition("@")
        if self.judgement.suggestion is None or not at:
            return None
        return external_form(f"{local}@{self.judgement.suggestion}")

    @property
    def is_alert(self) -> bool:
        """True for anything but allow."""
        return self.judgement.action is not Action.ALLOW

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``--json`` line of ``typogate check``). The
        recipient is written as a sender writes it, as ``suggested_recipient`` is."""
        j = self.judgement
        return {
            "recipient": external_form(self.recipient),
            "domain": j.domain,
            "action": j.action.value,
            "reason": j.reason,
            "explanation": j.explanation,
            "suggestion": j.suggestion,
            "suggested_recipient": self.suggested_recipient,
            "alternatives": list(j.alternatives),
            "score": round(j.score, 4),
            "rule": j.rule,
            "edits": list(j.edits),
            "risk": j.risk.value if j.risk is not None else None,
        }
