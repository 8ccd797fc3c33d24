"""The sink's SMTP server (aiosmtpd): every answer is given at RCPT, so no content is ever
received.

A refused recipient is never added to the envelope, so a DATA command in a transaction with
only refused recipients gets aiosmtpd's ``503`` and not one line of the message is read.
Only a recipient at a domain the operator chose to forward (a real registrant) is accepted,
and only after the registrant's own server accepted it: the session is mirrored to that
server, DATA passes straight through (never written anywhere) and is answered with that
server's reply, as typogate's SMTP proxy does. A client's session with that server ends
with the client's, however it ends.

The sink listens on port 25 for anyone: sessions at once and per client address are
bounded (``sink_connections``, ``sink_connections_per_client`` in ``[limits]``, within the
open-file limit), and a client past a bound is told ``421`` (:mod:`typogate.gateway.admission`).
Sessions passed on to registrants at once are bounded too (``sink_forwarding_sessions``):
each may hold a message in memory.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from dataclasses import replace

from aiosmtpd.smtp import SMTP, Envelope, Session

from typogate.gateway.activation import server_arguments
from typogate.gateway.admission import Admission, AdmittedSMTP, client_address
from typogate.gateway.answers import NEEDS_SMTPUTF8, unsendable_sender
from typogate.gateway.next_hop import FAILURES, NextHop, passed_on, refusal_of
from typogate.gateway.sink.decision import SinkPolicy
from typogate.gateway.sink.records import SinkRecorder
from typogate.store.sink_log import SinkLog, SinkOutcome

log = logging.getLogger(__name__)

_NEXT_HOP_DOWN = "451 4.4.1 the recipient's mail server is unreachable, please try again later"
# One registrant's server per transaction: a recipient for another one is asked to come
# again in a transaction of its own (a 452 makes the sender's MTA retry it soon).
_ONE_NEXT_HOP = "452 4.5.3 one destination per transaction here, please send again"
# Every forwarded session may hold a message of up to DATA's limit in memory, twice: past
# the bound a new one is told to come again, as a full MTA tells it (RFC 5321 452).
_FORWARDS_FULL = "452 4.3.1 too many messages being passed on now, please try again later"


class SinkHandler:
    """aiosmtpd handler hooks: the sink's answer at RCPT, recorded in the background."""

    def __init__(
        self,
        policy: SinkPolicy,
        recorder: SinkRecorder,
        sink_log: SinkLog | None,
        *,
        timeout: float = 60.0,
        forwarding_sessions: int = 16,
    ) -> None:
        self.policy = policy
        self.recorder = recorder
        self.sink_log = sink_log
        self.timeout = timeout
        self.forwarding_sessions = forwarding_sessions
        # The session with a registrant's server mirroring each client transaction.
        self._forwards: dict[int, NextHop] = {}

    async def handle_RCPT(  # noqa: N802 (aiosmtpd hook names)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = self.policy.answer(address, utf8=envelope.smtp_utf8)
        if answer.forward_to is not None:
            reply = await self._forward(session, envelope, address, answer.forward_to)
            accepted = reply.startswith("2")
            if accepted:
                envelope.rcpt_tos.append(address)
            outcome = SinkOutcome.FORWARDED if accepted else SinkOutcome.NOT_FORWARDED
            # The registrant's server may echo the address: the record keeps it hidden.
            kept = reply.replace(f"{answer.local}@", "*@") if answer.local else reply
            answer = replace(answer, outcome=outcome, reply=reply, kept_reply=kept)
        if self.sink_log is not None:
            self.sink_log.record(
                self.recorder.record(
                    answer,
                    client_address=client_address(session.peer),
                    helo=session.host_name or "",
                    sender=envelope.mail_from or "",
                )
            )
        return answer.reply

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        # Reached only with a forwarded recipient in the envelope (aiosmtpd answers 503
        # itself when there is none): the content goes to the registrant's server only.
        forward = self._forwards.pop(id(session), None)
        if forward is None:
            return "554 5.5.1 no valid recipients"
        return await forward.deliver(envelope.original_content or b"", _NEXT_HOP_DOWN)

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        await self.end_session(session)
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        await self.end_session(session)
        return "221 Bye"

    async def _forward(
        self, session: Session, envelope: Envelope, address: str, next_hop: tuple[str, int]
    ) -> str:
        forward = self._forwards.get(id(session))
        if forward is not None and forward.address != next_hop:
            return _ONE_NEXT_HOP
        sender = (envelope.mail_from or "").strip("<>")
        refused = unsendable_sender(sender)
        if refused is not None:  # no one can write it on, now or later: not a 452
            return refused
        if forward is None and len(self._forwards) >= self.forwarding_sessions:
            log.warning(
                "sink: %d sessions passed on at once, deferring another", len(self._forwards)
            )
            return _FORWARDS_FULL
        try:
            if forward is None:
                forward, _ = await NextHop.open(
                    next_hop,
                    sender,
                    options=envelope.mail_options,
                    timeout=self.timeout,
                )
                self._forwards[id(session)] = forward
            reply = await forward.rcpt(address)
        except UnicodeEncodeError:
            # A UTF-8 sender or recipient the client wrote without SMTPUTF8: RFC 6531
            # refuses it for good; the registrant's server was never unreachable.
            return NEEDS_SMTPUTF8
        except (*FAILURES, ValueError) as error:
            log.warning("sink: forwarding to %s:%d: %s", *next_hop, error)
            refused = refusal_of(error)
            if refused is not None:  # the registrant's own answer: the session goes on
                return refused
            await self.end_session(session)
            return _NEXT_HOP_DOWN
        return passed_on(reply)

    async def end_session(self, session: Session) -> None:
        """Close the session with a registrant's server that ``session`` opened, if any."""
        forward = self._forwards.pop(id(session), None)
        if forward is not None:
            await forward.close()


# The common MAIL FROM / RCPT TO argument: <dot-atom@ldh.domain> and its parameters.
_PLAIN_PATH = re.compile(
    r"\s*<((?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\.)*[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)>\s*(.*)",
    re.DOTALL,
)


class SinkSMTP(AdmittedSMTP):
    """aiosmtpd's SMTP, within the sink's bounds, with a fast path for plain addresses.

    aiosmtpd reads every MAIL and RCPT path with the email package's header parser, the
    largest cost of a refusal after the socket work; a path that is a plain
    ``<local@domain>`` gives the same result by a regular expression, anything else (quoted
    local parts, source routes, address literals, Unicode) still goes to the parser.
    """

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = _PLAIN_PATH.fullmatch(arg) if arg else None
        if plain is None or len(plain.group(1).rpartition("@")[0]) > 64:
            return super()._getaddr(arg)
        return plain.group(1), plain.group(2)


def smtp_server(handler: SinkHandler, admission: Admission, hostname: str) -> SMTP:
    """One SMTP protocol instance for a client connection (the server's factory)."""
    return SinkSMTP(
        handler,
        admission,
        hostname=hostname,
        enable_SMTPUTF8=True,
        decode_data=False,
        # Nobody sends the sink a message: a DATA that does reach it (a forwarded recipient)
        # is bounded like an ordinary MTA's.
        data_size_limit=25 * 1024 * 1024,
        timeout=60,
    )


async def start(
    handler: SinkHandler,
    admission: Admission,
    host: str,
    port: int,
    hostname: str,
    sock: socket.socket | None = None,
) -> asyncio.Server:
    """Listen on ``host:port`` (or on ``sock``, passed by systemd, bound there) for the
    sessions ``admission`` lets in; raises OSError when the address cannot be bound."""
    loop = asyncio.get_running_loop()
    where = server_arguments(host, port, sock)
    return await loop.create_server(lambda: smtp_server(handler, admission, hostname), **where)
