"""What a verdict means for the mail flow, independent of any protocol.

Each adapter (policy service, milter, proxy) turns a :class:`~typogate.Verdict` into its own
protocol's words; the wording and the status codes live here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from typogate.domains import InvalidAddress
from typogate.policy import Verdict
from typogate.vocabulary import Unreadable

# RFC 3463: 5.1.2 "bad destination system address" fits a recipient domain typed wrong;
# 5.7.1 "delivery not authorized" fits a domain blocked by policy.
_STATUS_TYPO = "5.1.2"
_STATUS_BLOCKED = "5.7.1"
# 4.1.3/5.1.3 "bad destination mailbox address syntax": where the mail goes cannot be read.
_STATUS_UNREADABLE = {Unreadable.DEFER: (450, "4.1.3"), Unreadable.REJECT: (550, "5.1.3")}
_MAX_TEXT = 400  # SMTP reply lines stay well under 512 octets with code and status
# RFC 6531 3.7.4.1: a UTF-8 address in a transaction that did not ask for SMTPUTF8.
NEEDS_SMTPUTF8 = "553 5.6.7 a non-ASCII address needs SMTPUTF8"


@dataclass(frozen=True, slots=True)
class Refusal:
    """An SMTP refusal: ``550 5.1.2 text``."""

    code: int
    status: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"


def one_line(text: str, limit: int = _MAX_TEXT) -> str:
    """Text safe on one protocol line: no control characters, bounded length."""
    if not text.isprintable():  # the whole-string test is C-fast; most answers pass it
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def refusal(verdict: Verdict) -> Refusal:
    """The SMTP refusal for a rejected recipient, saying what looked wrong and what to do."""
    blocked = verdict.reason.startswith("blocked.")
    domain = verdict.domain
    if blocked:  # the rule's own message, or the default sentence with its suggestion
        what = verdict.explanation
    elif verdict.suggestion:
        what = f"{domain} looks like a mistake: did you mean {verdict.suggestion}?"
    elif verdict.alternatives:
        what = f"{domain} looks like a mistake for {' or '.join(verdict.alternatives)}."
    else:
        what = verdict.explanation
    how = f"If {domain} is right, ask your mail admin to allow it."
    text = one_line(f"{what} {how} ({verdict.reason})")
    return Refusal(550, _STATUS_BLOCKED if blocked else _STATUS_TYPO, text)


def warning_header(verdict: Verdict) -> tuple[str, str]:
    """The header added to a message with a suspicious recipient (warn)."""
    value = f"{verdict.recipient}: {verdict.reason}"
    if meant := _meant(verdict):
        value += f"; did you mean {meant}?"
    return "X-Typogate", one_line(value, 200)


def hold_reason(verdict: Verdict) -> str:
    """The text Postfix records with a held message (``postcat``/``postqueue`` show it)."""
    meant = _meant(verdict)
    suggestion = f" (did you mean {meant}?)" if meant else ""
    return one_line(f"typogate: {verdict.recipient} {verdict.reason}{suggestion}", 200)


def unreadable(error: InvalidAddress, action: Unreadable) -> Refusal:
    """The answer for a recipient whose destination typogate cannot read: never a pass.

    ``action`` is ``gateway.unreadable_address``: a temporary failure by default, so the
    client keeps the message and nothing is lost while someone looks.
    """
    code, status = _STATUS_UNREADABLE[action]
    text = one_line(
        f"typogate cannot tell where mail to this recipient goes ({error.reason}); "
        "check the address, or ask your mail admin"
    )
    return Refusal(code, status, text)


def _meant(verdict: Verdict) -> str | None:
    """The domain probably meant, or the equally likely ones (``typo.ambiguous``)."""
    return verdict.suggestion or " or ".join(verdict.alternatives) or None
