"""What a verdict means for the mail flow, independent of any protocol.

Each adapter (policy service, milter, proxy) turns a :class:`~typogate.Verdict` into its own
protocol's words; the wording and the status codes live here, once.

What a gateway says is ASCII: RFC 5321 reply text and RFC 5322 header fields are, unless the
client asked for SMTPUTF8, and a policy service is not told whether it did (Postfix passes
its text on as it is). A domain is written in its A-label form, which is also the one form
that shows a look-alike for what it is: ``xn--rmy-5cd.mil``, where ``аrmy.mil`` (a Cyrillic
``а``) reads as the very domain it is "not".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from typogate.domains import InvalidAddress, ascii_form, is_utf8
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
# RFC 5321 4.1.2 and RFC 6531 3.3 allow in an address neither a byte that is not UTF-8
# nor a control character, not even quoted, and no SMTP client writes one on (aiosmtplib
# refuses the command). Such an address is refused before anything else, in words. Postfix
# refuses a NUL and a byte that is not UTF-8 too ("Bad sender address syntax", "bad UTF-8
# syntax"), though it takes the other controls. The C1 controls and U+2028, U+2029 are
# line breaks to a mail program and to Python (str.splitlines), and no header may hold them
# (aiosmtplib refuses to write them on: "contains characters not permitted").
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


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
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def unsendable_sender(address: str) -> str | None:
    """The refusal of a ``MAIL FROM`` address that no one can pass on (a byte that is not
    UTF-8, a control character); None for one that can be."""
    why = unsendable(address)
    return None if why is None else f"501 5.1.7 the sender address {why}"


def unsendable_recipient(address: str) -> str | None:
    """The refusal of a ``RCPT TO`` address that no one can pass on; None for one that
    can be."""
    why = unsendable(address)
    return None if why is None else f"501 5.1.3 the recipient address {why}"


def unsendable(address: str) -> str | None:
    """Why no one can pass ``address`` on (a byte that is not UTF-8, a control
    character), in words that follow "the sender address"; None when it can be."""
    if not is_utf8(address):
        return "is not valid UTF-8"
    control = _CONTROL.search(address)
    if control is None:
        return None
    return f"holds a control character (U+{ord(control.group()):04X})"


def protocol_text(text: str, limit: int = _MAX_TEXT, *, utf8: bool = False) -> str:
    """Text for an SMTP reply or a header: one line of at most ``limit`` octets, ASCII
    unless the peer asked for SMTPUTF8 (``utf8``): another character is written as its
    escape (``\\u0430``)."""
    if len(text) <= limit and text.isascii() and text.isprintable() and "  " not in text:
        return text  # the common case, without one_line's walk over every character
    if not utf8:  # escaped before it is cut: an escape is six characters, not one
        return one_line(text.encode("ascii", "backslashreplace").decode(), limit)
    flat = one_line(text, limit)
    if len(encoded := flat.encode()) > limit:  # RFC 5321 counts a line's octets
        flat = encoded[: limit - 3].decode(errors="ignore") + "..."
    return flat


def refusal(verdict: Verdict, *, utf8: bool = False) -> Refusal:
    """The SMTP refusal for a rejected recipient, saying what looked wrong and what to do:
    in UTF-8 to a client that asked for SMTPUTF8 (``utf8``), in ASCII (A-labels) else."""
    blocked = verdict.reason.startswith("blocked.")
    domain = ascii_form(verdict.domain)
    # In UTF-8, the typed domain in both forms: the A-label still shows a look-alike
    # (a Cyrillic а in аrmy.mil) for what it is.
    typed = domain if not utf8 or domain == verdict.domain else f"{verdict.domain} ({domain})"
    meant = _meant(verdict, utf8=utf8)
    if blocked or not meant:  # the rule's own message, or the default sentence
        what = verdict.explanation
        if domain not in what:  # a monitor's rule names both forms already
            what = what.replace(verdict.domain, typed)
    elif verdict.suggestion:
        what = f"{typed} looks like a mistake: did you mean {meant}?"
    else:
        what = f"{typed} looks like a mistake for {meant}."
    how = f"If {domain} is right, ask your mail admin to allow it."
    text = protocol_text(f"{what} {how} ({verdict.reason})", utf8=utf8)
    return Refusal(550, _STATUS_BLOCKED if blocked else _STATUS_TYPO, text)


def warning_header(verdict: Verdict) -> tuple[str, str]:
    """The header added to a message with a suspicious recipient (warn)."""
    value = f"{ascii_form(verdict.recipient)}: {verdict.reason}"
    if meant := _meant(verdict):
        value += f"; did you mean {meant}?"
    return "X-Typogate", protocol_text(value, 200)


def hold_reason(verdict: Verdict) -> str:
    """The text Postfix records with a held message (``postcat``/``postqueue`` show it)."""
    meant = _meant(verdict)
    suggestion = f" (did you mean {meant}?)" if meant else ""
    recipient = ascii_form(verdict.recipient)
    return protocol_text(f"typogate: {recipient} {verdict.reason}{suggestion}", 200)


def unreadable(error: InvalidAddress, action: Unreadable) -> Refusal:
    """The answer for a recipient whose destination typogate cannot read: never a pass.

    ``action`` is ``gateway.unreadable_address``: a temporary failure by default, so the
    client keeps the message and nothing is lost while someone looks.
    """
    code, status = _STATUS_UNREADABLE[action]
    text = protocol_text(
        f"typogate cannot tell where mail to this recipient goes ({error.reason}); "
        "check the address, or ask your mail admin"
    )
    return Refusal(code, status, text)


def _meant(verdict: Verdict, *, utf8: bool = False) -> str | None:
    """The domain probably meant, or the equally likely ones (``typo.ambiguous``)."""
    meant = (verdict.suggestion,) if verdict.suggestion else verdict.alternatives
    return " or ".join(meant if utf8 else map(ascii_form, meant)) or None
