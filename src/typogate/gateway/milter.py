"""Milter (pymilter on Debian's libmilter): sees the whole message, so it also covers mail
submitted with sendmail(1), which never meets the policy service (``non_smtpd_milters``).

At end of message, per recipient verdict:
* reject: the recipient is removed (``delrcpt``) and the sender gets typogate's notice; when
  every recipient is rejected the message is refused (550), and for sendmail(1) mail Postfix
  then returns a standard RFC 3464 delivery status notification to the sender;
* hold: the whole message is quarantined (Postfix's hold queue) and recorded for release;
* warn: an ``X-Typogate`` header is added.
Audit mode decides and records but changes nothing. A milter that is down or slow gets
Postfix's ``milter_default_action`` (docs/postfix.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import Milter

from typogate.domains import InvalidAddress
from typogate.errors import CannotListen
from typogate.gateway import answers
from typogate.gateway.gatekeeper import Envelope, Gatekeeper
from typogate.policy import Verdict
from typogate.vocabulary import Action, HoldSource

log = logging.getLogger(__name__)


@dataclass
class _Envelope:
    sender: str | None = None
    sasl_username: str | None = None
    recipients: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # the few a notice shows


# The headers typogate's notice to the sender shows (or threads on).
_NOTICE_HEADERS = frozenset({"subject", "date", "message-id"})


def _bare(address: str) -> str:
    return address.strip().strip("<>").strip()


class TypogateMilter(Milter.Base):  # type: ignore[misc]
    """One instance per SMTP/pickup connection, created by pymilter's factory."""

    gatekeeper: Gatekeeper  # set by :func:`run` before the first connection

    def __init__(self) -> None:
        self.envelope = _Envelope()
        self.client_address: str | None = None

    def connect(self, hostname: str, family: Any, hostaddr: Any) -> int:
        # (address, port) for a network client: believed as sender if trusted
        if isinstance(hostaddr, tuple) and hostaddr:
            self.client_address = str(hostaddr[0])
        return Milter.CONTINUE

    def envfrom(self, sender: str, *params: Any) -> int:
        authenticated = self.getsymval("{auth_authen}") or None  # in Postfix's MAIL macros
        self.envelope = _Envelope(sender=_bare(sender) or None, sasl_username=authenticated)
        return Milter.CONTINUE

    def envrcpt(self, recipient: str, *params: Any) -> int:
        self.envelope.recipients.append(_bare(recipient))
        return Milter.CONTINUE

    def header(self, name: str, value: str) -> int:
        key = name.lower()
        if key in _NOTICE_HEADERS and key not in self.envelope.headers:
            self.envelope.headers[key] = value
        return Milter.CONTINUE

    def eom(self) -> int:
        headers = self.envelope.headers
        envelope = Envelope(
            sender=self.envelope.sender,
            sasl_username=self.envelope.sasl_username,
            queue_id=self.getsymval("i") or None,
            client_address=self.client_address,
            recipients=tuple(self.envelope.recipients),
            subject=headers.get("subject", ""),  # "": the message has none
            date=headers.get("date"),
            message_id=headers.get("message-id"),
        )
        acting: list[Verdict] = []
        given: dict[int, str] = {}  # verdict -> the recipient as Postfix gave it
        for recipient in self.envelope.recipients:
            try:
                decision = self.gatekeeper.decide(recipient, envelope)
            except InvalidAddress as error:
                refusal = self.gatekeeper.unreadable(recipient, error)  # never a pass
                if refusal is None:
                    continue
                # One message: a recipient that cannot be read defers (or refuses) it all.
                self.setreply(str(refusal.code), refusal.status, refusal.text)
                return Milter.TEMPFAIL if refusal.code < 500 else Milter.REJECT
            if decision.action is not Action.ALLOW:
                acting.append(decision.verdict)
                given[id(decision.verdict)] = recipient
        holds = [v for v in acting if v.action is Action.HOLD]
        rejects = [v for v in acting if v.action is Action.REJECT]
        if holds:
            return self._quarantine(holds, envelope)
        for verdict in acting:
            if verdict.action is Action.WARN:
                self.addheader(*answers.warning_header(verdict))
        if rejects and len(rejects) == len(self.envelope.recipients):
            refusal = answers.refusal(rejects[0])
            self.setreply(str(refusal.code), refusal.status, refusal.text)
            return Milter.REJECT
        for verdict in rejects:
            self.delrcpt(f"<{given[id(verdict)]}>")
            self.addheader(*answers.warning_header(verdict))
        if rejects:
            self.gatekeeper.removed(rejects, envelope)
        return Milter.ACCEPT

    def _quarantine(self, holds: list[Verdict], envelope: Envelope) -> int:
        try:
            self.gatekeeper.hold(holds, envelope, HoldSource.MILTER_QUARANTINE)
        except Exception as error:  # not releasable: let the client try again later
            log.error("milter: cannot record hold: %s", error)
            self.setreply("451", "4.3.0", "typogate cannot record the hold now; try later")
            return Milter.TEMPFAIL
        self.quarantine(answers.hold_reason(holds[0]))
        return Milter.ACCEPT


def run(gatekeeper: Gatekeeper, socket_spec: str, timeout: int = 600) -> None:
    """Serve milter connections on ``socket_spec`` (``inet:10041@127.0.0.1``) on this
    thread until libmilter's signal thread sees SIGTERM or SIGINT (the controller's
    ``block_stop_signals`` leaves them to it). Raises :class:`CannotListen` when libmilter
    cannot open the socket."""
    TypogateMilter.gatekeeper = gatekeeper
    Milter.factory = TypogateMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.DELRCPT | Milter.QUARANTINE)
    log.info("milter on %s (%s mode)", socket_spec, gatekeeper.mode)
    try:
        Milter.runmilter("typogate", socket_spec, timeout)
    except Milter.milter.error as error:
        # libmilter tells no more than "cannot opensocket" or "cannot start".
        why = f"libmilter: {error} (is the address in use?)"
        raise CannotListen("the milter", socket_spec, why) from None
