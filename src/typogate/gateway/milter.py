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

import asyncio
import logging
import signal
import uuid
from dataclasses import dataclass, field
from typing import Any

import Milter

from typogate.domains import InvalidAddress
from typogate.gateway import answers
from typogate.gateway.notice import NoticeSender
from typogate.policy import Action, Guard, Verdict
from typogate.store.journal import HeldMessage, Journal, VerdictEvent

log = logging.getLogger(__name__)


@dataclass
class MilterSettings:
    """What every milter connection shares (pymilter builds one object per connection)."""

    guard: Guard
    mode: str = "enforce"
    journal: Journal | None = None
    notices: NoticeSender | None = None


@dataclass
class _Envelope:
    sender: str | None = None
    recipients: list[str] = field(default_factory=list)


def _bare(address: str) -> str:
    return address.strip().strip("<>").strip()


class TypogateMilter(Milter.Base):  # type: ignore[misc]
    """One instance per SMTP/pickup connection, created by pymilter's factory."""

    settings: MilterSettings  # set by :func:`run` before the first connection

    def __init__(self) -> None:
        self.envelope = _Envelope()

    def envfrom(self, sender: str, *params: Any) -> int:
        self.envelope = _Envelope(sender=_bare(sender) or None)
        return Milter.CONTINUE

    def envrcpt(self, recipient: str, *params: Any) -> int:
        self.envelope.recipients.append(_bare(recipient))
        return Milter.CONTINUE

    def eom(self) -> int:
        settings = self.settings
        verdicts: list[Verdict] = []
        for recipient in self.envelope.recipients:
            try:
                verdicts.append(settings.guard.evaluate(recipient, self.envelope.sender))
            except InvalidAddress as error:
                log.info("milter: %s: %s (left to the MTA)", recipient, error.reason)
        queue_id = self.getsymval("i") or None
        for verdict in verdicts:
            self._record(verdict, queue_id)
        acting = [v for v in verdicts if answers.enforced(v, settings.mode) is not Action.ALLOW]
        holds = [v for v in acting if v.action is Action.HOLD]
        rejects = [v for v in acting if v.action is Action.REJECT]
        if holds:
            return self._quarantine(holds, queue_id)
        for verdict in acting:
            if verdict.action is Action.WARN:
                self.addheader(*answers.warning_header(verdict))
        if rejects and len(rejects) == len(self.envelope.recipients):
            refusal = answers.refusal(rejects[0])
            self.setreply(str(refusal.code), refusal.status, refusal.text)
            return Milter.REJECT
        for verdict in rejects:
            self.delrcpt(f"<{verdict.recipient}>")
            self.addheader(*answers.warning_header(verdict))
        if rejects:
            self._notify(rejects, queue_id, held=False)
        return Milter.ACCEPT

    def _quarantine(self, holds: list[Verdict], queue_id: str | None) -> int:
        held = HeldMessage(
            hold_id=uuid.uuid4().hex,
            source="milter-quarantine",
            sender=self.envelope.sender,
            recipients=tuple(v.recipient for v in holds),
            reasons=tuple(v.reason for v in holds),
            suggestions=tuple(v.suggestion for v in holds),
            queue_id=queue_id,
        )
        if self.settings.journal is not None:
            try:
                self.settings.journal.hold(held)
            except Exception as error:  # not releasable: let the client try again later
                log.error("milter: cannot record hold: %s", error)
                self.setreply("451", "4.3.0", "typogate cannot record the hold now; try later")
                return Milter.TEMPFAIL
        self.quarantine(answers.hold_reason(holds[0]))
        self._notify(holds, queue_id, held=True, hold=held)
        return Milter.ACCEPT

    def _notify(
        self,
        verdicts: list[Verdict],
        queue_id: str | None,
        held: bool,
        hold: HeldMessage | None = None,
    ) -> None:
        notices = self.settings.notices
        if notices is None or not self.envelope.sender:
            return
        for verdict in verdicts:
            message = notices.compose(verdict, self.envelope.sender, queue_id, hold)
            asyncio.run(notices.send(message, self.envelope.sender))

    def _record(self, verdict: Verdict, queue_id: str | None) -> None:
        if self.settings.journal is None:
            return
        self.settings.journal.record(
            VerdictEvent.of(
                verdict,
                "milter",
                self.settings.mode,
                sender=self.envelope.sender,
                queue_id=queue_id,
            )
        )


class MilterNotStarted(OSError):
    """libmilter could not open its socket or start serving."""


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def block_stop_signals() -> None:
    """Leave SIGTERM/SIGINT/SIGHUP to libmilter's signal thread, which stops :func:`run`
    cleanly. Call before starting any other thread: threads inherit the blocked set, and
    one that did not would die of the signal instead, skipping the journal's last flush."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def run(settings: MilterSettings, socket_spec: str, timeout: int = 600) -> None:
    """Serve milter connections on ``socket_spec`` (``inet:10041@127.0.0.1``) until stopped."""
    TypogateMilter.settings = settings
    Milter.factory = TypogateMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.DELRCPT | Milter.QUARANTINE)
    log.info("milter on %s (%s mode)", socket_spec, settings.mode)
    try:
        Milter.runmilter("typogate", socket_spec, timeout)
    except Milter.milter.error as error:
        # libmilter tells no more than "cannot opensocket" or "cannot start".
        raise MilterNotStarted(f"libmilter: {error} (is the address in use?)") from None
