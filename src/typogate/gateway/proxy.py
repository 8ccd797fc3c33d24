"""SMTP proxy for MTAs that can use a smarthost or content filter.

typogate keeps no queue: each client session is mirrored on a session to the next hop, so
every answer the client gets is the next hop's answer (or typogate's own refusal of a typo
recipient at RCPT). DATA is answered 250 only after the next hop accepted the message,
so nothing is ever acknowledged and then lost. If the next hop is unreachable the client
gets a 451 and keeps the message.

A held recipient cannot be held here (no queue): it is refused like a reject, with the
explanation, and recorded. Warnings add an ``X-Typogate`` header on the way through.
Recipients are judged at RCPT by their address; at DATA, a recipient the ``To`` or ``Cc``
header shows under a name that makes it a look-alike (``"ceo@army.mil" <ceo@evil.com>``)
has the whole message refused, as every recipient was given to the next hop already. What
the mail teaches (the domains its sender wrote to) is learned once the next hop took it.

Bounds (``[limits]``): at most ``max_connections`` client sessions at once, as far as the
open-file limit allows (one more is told ``421`` and closed, and its MTA tries again
later; see :mod:`typogate.gateway.admission`); a message larger than
``max_message_bytes`` is refused with ``552`` (and never held in memory whole); a session
silent for ``idle_seconds`` is closed. The next-hop session of a client lives exactly as
long as the client's: a client that drops, mid-DATA or anywhere, takes its relay with it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32

from aiosmtpd.smtp import SMTP, Envelope, Session

from typogate.config import Limits
from typogate.domains import InvalidAddress
from typogate.gateway import answers
from typogate.gateway.admission import Admission, AdmittedSMTP, client_address
from typogate.gateway.envelope import SHOWING_HEADERS, note_shown
from typogate.gateway.envelope import Envelope as MailEnvelope
from typogate.gateway.gatekeeper import Decision, Gatekeeper
from typogate.gateway.next_hop import FAILURES, NextHop, passed_on, refusal_of
from typogate.vocabulary import Action

log = logging.getLogger(__name__)

_NEXT_HOP_DOWN = "451 4.4.1 next hop unreachable, please try again later"
_FOLD = re.compile(r"\r?\n(?=[ \t])")  # a header line's continuation (RFC 5322 folding)


@dataclass(frozen=True, slots=True)
class ProxyLimits:
    """Bounds on the proxy's sessions (``[limits]``)."""

    max_connections: int = 50
    max_message_bytes: int = 10_240_000  # Postfix's message_size_limit
    idle_seconds: float = 300.0

    @classmethod
    def of(cls, limits: Limits) -> ProxyLimits:
        """The bounds the configuration's ``[limits]`` set."""
        return cls(limits.proxy_connections, limits.proxy_message_bytes, limits.proxy_idle_seconds)


@dataclass
class _Relay:
    """The next-hop session mirroring one client session."""

    hop: NextHop
    warnings: list[tuple[str, str]] = field(default_factory=list)
    # Each recipient given to the next hop, and its decision at RCPT.
    decisions: list[tuple[str, Decision]] = field(default_factory=list)


class ProxyHandler:
    """aiosmtpd handler hooks: policy at RCPT, relaying through the next hop."""

    def __init__(
        self,
        gatekeeper: Gatekeeper,
        next_hop: tuple[str, int],
        *,
        timeout: float = 60.0,
        limits: ProxyLimits | None = None,
    ) -> None:
        self.gatekeeper = gatekeeper
        self.next_hop = next_hop
        self.timeout = timeout
        self.limits = limits or ProxyLimits()
        self.admission = Admission.within_open_files("proxy", self.limits.max_connections)
        self._relays: dict[int, _Relay] = {}

    def session(self) -> ProxySession:
        """The SMTP server for one new client connection (the asyncio protocol factory)."""
        return ProxySession(self)

    async def handle_MAIL(  # noqa: N802 (aiosmtpd hook names)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self.end_session(session)
        if not address.isascii() and not envelope.smtp_utf8:
            return answers.NEEDS_SMTPUTF8
        refused = answers.unsendable_sender(address)
        if refused is not None:
            return refused
        sender = "" if address.strip("<> ") == "" else address  # bounces: MAIL FROM:<>
        try:
            hop, reply = await NextHop.open(
                self.next_hop, sender, options=options, timeout=self.timeout
            )
        except ValueError as error:
            return f"501 5.1.7 {answers.protocol_text(str(error))}"
        except FAILURES as error:
            log.warning("proxy: next hop %s:%d: %s", *self.next_hop, error)
            return refusal_of(error) or _NEXT_HOP_DOWN
        self._relays[id(session)] = _Relay(hop)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return passed_on(reply)

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        relay = self._relays.get(id(session))
        if relay is None:
            return "503 5.5.1 MAIL first"
        if not address.isascii() and not envelope.smtp_utf8:
            return answers.NEEDS_SMTPUTF8  # never waved through: not judged, not relayed
        refused = answers.unsendable_recipient(address)
        if refused is not None:
            return refused  # never waved through: not judged, not relayed
        mail = _mail(envelope, session)
        try:  # learned from once the next hop took the message (handle_DATA)
            decision = self.gatekeeper.decide(address, mail, learn=False)
        except InvalidAddress as error:
            refusal = self.gatekeeper.unreadable(address, error)  # never a pass
            if refusal is not None:
                return str(refusal)
            decision = None  # audit mode: relayed as it is
        action = decision.action if decision is not None else Action.ALLOW
        if decision is not None and action in (Action.REJECT, Action.HOLD):
            return str(answers.refusal(decision.verdict, utf8=envelope.smtp_utf8))
        try:
            reply = await relay.hop.rcpt(address)
        except FAILURES as error:
            return refusal_of(error) or _NEXT_HOP_DOWN
        if decision is not None and action is Action.WARN:
            relay.warnings.append(answers.warning_header(decision.verdict))
        if decision is not None:
            relay.decisions.append((address, decision))
        envelope.rcpt_tos.append(address)
        return passed_on(reply)

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        relay = self._relays.pop(id(session), None)
        if relay is None:
            return "503 5.5.1 no valid recipients"
        content = envelope.original_content or b""
        mail = _mail(envelope, session, shown=_shown_in(content))
        decisions = []
        for address, first in relay.decisions:
            decision = self.gatekeeper.reconsidered(address, mail, first)
            if decision.action in (Action.REJECT, Action.HOLD):
                await relay.hop.close()  # the next hop is told nothing of the message
                return str(answers.refusal(decision.verdict, utf8=envelope.smtp_utf8))
            if decision is not first and decision.action is Action.WARN:
                relay.warnings.append(answers.warning_header(decision.verdict))
            decisions.append(decision)
        headers = "".join(f"{name}: {value}\r\n" for name, value in relay.warnings).encode()
        answer = await relay.hop.deliver(headers + content, _NEXT_HOP_DOWN)
        if answer.startswith("2"):
            self.gatekeeper.delivered(decisions, mail)
        return answer

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        await self.end_session(session)
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        await self.end_session(session)
        return "221 Bye"

    async def end_session(self, session: Session) -> None:
        """Close the next-hop session mirroring ``session``, if it has one: a client that
        ends its session, however, takes its relay with it."""
        relay = self._relays.pop(id(session), None)
        if relay is not None:
            await relay.hop.close()


def _mail(
    envelope: Envelope, session: Session, shown: tuple[tuple[str, str], ...] = ()
) -> MailEnvelope:
    """What the proxy knows of the message for the gatekeeper: its sender, the client,
    and once DATA came, the names its headers show recipients under."""
    return MailEnvelope(
        sender=(envelope.mail_from or "").strip("<>") or None,
        client_address=client_address(session.peer) or None,
        shown=shown,
    )


def _shown_in(content: bytes) -> tuple[tuple[str, str], ...]:
    """The display names the ``To`` and ``Cc`` headers of the message ``content`` show its
    recipients under, where a name shows an @-sign, as the milter reads them."""
    end = content.find(b"\r\n\r\n")  # the headers end at the first empty line
    headers = BytesHeaderParser(policy=compat32).parsebytes(content if end < 0 else content[:end])
    shown: dict[str, str] = {}
    for name, value in headers.raw_items():
        if name.lower() in SHOWING_HEADERS:
            # An SMTPUTF8 header's bytes come as surrogates: read them as the UTF-8 they are.
            text = value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
            note_shown(shown, _FOLD.sub("", text))
    return tuple(shown.items())


class ProxySession(AdmittedSMTP):
    """aiosmtpd's SMTP server for one client, within the proxy's limits."""

    def __init__(self, handler: ProxyHandler) -> None:
        super().__init__(
            handler,
            handler.admission,
            decode_data=False,
            enable_SMTPUTF8=True,  # RFC 6531, passed on to the next hop with MAIL
            data_size_limit=handler.limits.max_message_bytes,
            timeout=handler.limits.idle_seconds,
        )
