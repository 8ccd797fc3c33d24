"""Which look-alike domains the sink answers for, and what it answers for one recipient.

The recipient's domain is judged by typogate's Guard, built from the protected lists of the
organisations the sink serves: a likely typo gets a refusal naming the address the sender
meant (RFC 3463 ``5.1.2``, bad destination system address), anything else an ordinary
``5.1.1`` (bad destination mailbox). Nothing here waits for the network or the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from typogate.config import Served, host_and_port
from typogate.domains import Domain, InvalidAddress, ascii_form, parse_address, parse_domain
from typogate.errors import ConfigError
from typogate.gateway.answers import NEEDS_SMTPUTF8, protocol_text
from typogate.policy import Guard
from typogate.store.sink_log import SinkOutcome
from typogate.vocabulary import Action, SinkChoice

NOTHING_KEPT = "Nothing was delivered or kept."
_MAX_REPLY = 500


@dataclass(frozen=True, slots=True)
class Answer:
    """What the sink answers for one recipient. ``reply`` is the SMTP reply line, except for
    a recipient to forward (``forward_to`` set): then the registrant's server answers."""

    outcome: SinkOutcome
    reply: str
    kept_reply: str  # the reply as recorded: ``*`` for the local part
    local: str  # the local part: hashed for the record, never kept as such
    lookalike: str = ""  # the recipient's domain, as a person reads it
    intended: str = ""  # the domain the sender meant, "" when none
    forward_to: tuple[str, int] | None = None


class SinkPolicy:
    """The served domains (single domains and whole suffixes) and the Guard that judges them.

    The most specific entry wins: ``army.ml`` (and its subdomains) before the suffix ``ml``,
    ``gov.ml`` before ``ml``. Raises :class:`ConfigError` for an entry that is not a domain
    or suffix, or a ``forward_to`` that is not HOST:PORT.
    """

    def __init__(self, guard: Guard, served: list[Served]) -> None:
        self.guard = guard
        self._by_domain: dict[str, Served] = {}
        self._by_suffix: dict[str, Served] = {}
        self._forward_to: dict[int, tuple[str, int]] = {}
        for entry in served:
            table = self._by_domain if entry.domain is not None else self._by_suffix
            table[served_name(entry)] = entry
            if entry.choice is SinkChoice.FORWARD:
                self._forward_to[id(entry)] = host_and_port(
                    entry.forward_to, "sink.serve: forward_to"
                )

    def served(self, domain: Domain) -> Served | None:
        """The entry that covers ``domain``, or ``None`` when the sink does not serve it."""
        labels = domain.ascii.split(".")
        for cut in range(len(labels)):
            tail = ".".join(labels[cut:])
            entry = self._by_domain.get(tail)
            if entry is None and cut > 0:
                entry = self._by_suffix.get(tail)
            if entry is not None:
                return entry
        return None

    def answer(self, recipient: str, *, utf8: bool = False) -> Answer:
        """The answer for ``recipient`` (as given in RCPT TO). ``utf8``: the client asked
        for SMTPUTF8, so the reply may carry Unicode; otherwise domains are written in their
        ASCII (IDNA) form."""
        try:
            parsed = parse_address(recipient)
        except InvalidAddress as error:
            reason = protocol_text(error.reason, 200, utf8=utf8)
            reply = f"501 5.1.3 <{protocol_text(recipient, 254, utf8=utf8)}>: {reason}"
            return Answer(SinkOutcome.INVALID, reply, "501 5.1.3 an unreadable address", "")
        local, domain = parsed.local, parsed.domain
        if not utf8 and not local.isascii():
            # RFC 6531: a non-ASCII address needs the SMTPUTF8 extension.
            reply = NEEDS_SMTPUTF8
            return Answer(SinkOutcome.INVALID, reply, reply, local, domain.unicode)
        typed = protocol_text(recipient[recipient.rfind("@") + 1 :].strip(" <>"), 255, utf8=utf8)
        lookalike = domain.unicode if utf8 else domain.ascii
        entry = self.served(domain)
        if entry is None:

            def text(who: str) -> str:
                return (
                    f"550 5.7.1 <{who}@{typed}>: relay access denied; this server takes no "
                    f"mail for {lookalike}."
                )

            outcome, intended = SinkOutcome.NOT_SERVED, ""
        elif entry.choice is SinkChoice.FORWARD:
            forward_to = self._forward_to[id(entry)]
            return Answer(SinkOutcome.FORWARDED, "", "", local, domain.unicode, "", forward_to)
        else:
            # A null-MX entry should get no mail at all; what still comes is judged as well.
            judgement = self.guard.judge_domain(domain.ascii)
            meant = judgement.alternatives or (
                (judgement.suggestion,) if judgement.suggestion else ()
            )
            if judgement.action is Action.ALLOW or not meant:

                def text(who: str) -> str:
                    return (
                        f"550 5.1.1 <{who}@{typed}>: no such mailbox; {lookalike} takes no "
                        f"mail. {NOTHING_KEPT}"
                    )

                outcome, intended = SinkOutcome.UNKNOWN, ""
            else:
                written = [name if utf8 else ascii_form(name) for name in meant]

                def text(who: str) -> str:
                    addresses = " or ".join(f"{who}@{name}" for name in written)
                    return (
                        f"550 5.1.2 <{who}@{typed}>: {lookalike} is not "
                        f"{' or '.join(written)}. Did you mean {addresses}? {NOTHING_KEPT}"
                    )

                outcome, intended = SinkOutcome.HINT, meant[0]
        # RFC 5321 bounds a reply line at 512 octets, code included.
        reply = protocol_text(text(protocol_text(local, 64, utf8=utf8)), _MAX_REPLY, utf8=utf8)
        kept = protocol_text(text("*"), _MAX_REPLY, utf8=utf8)
        return Answer(outcome, reply, kept, local, domain.unicode, intended)


def served_name(entry: Served) -> str:
    """The entry's domain or suffix in ASCII (IDNA) form; raises :class:`ConfigError` when
    it is neither. A suffix is checked as a name under it (``ml`` as ``x.ml``)."""
    text = entry.domain if entry.domain is not None else entry.suffix
    assert text is not None
    try:
        return parse_domain(f"x.{text.strip('.')}").ascii.partition(".")[2]
    except InvalidAddress as error:
        raise ConfigError(f"sink.serve: {entry.target!r}: {error.reason}") from None
