"""typogate's own notices to a sender whose message was held, or whose message reached all
but some recipients (a milter removed them). Postfix sends none for either.

Sent like a bounce: null envelope sender and ``Auto-Submitted: auto-replied`` (RFC 3834), so
they never loop, through the relay the admin names (usually the MTA itself). Sending happens
on a thread of its own: no protocol's thread ever waits for a relay.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from typogate.policy import Verdict
from typogate.store.journal import HeldMessage

log = logging.getLogger(__name__)

_MAX_WAITING = 10_000  # notices waiting for the relay; past this, new ones are dropped
_SEND_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Relay:
    """Where notices are handed over: an SMTP server that accepts them for delivery."""

    host: str
    port: int


class NoticeSender:
    """Sends notices from a thread of its own; a failure is logged, never raised into the
    mail flow. :meth:`close` sends what is waiting, then stops."""

    def __init__(
        self, relay: Relay, from_address: str, link: Callable[[str], str] | None = None
    ) -> None:
        self.relay = relay
        self.from_address = from_address
        self.link = link  # hold id -> the sender's signed release link, when configured
        self.sent = 0
        self.failed = 0
        self._waiting: queue.Queue[tuple[EmailMessage, str] | None] = queue.Queue(_MAX_WAITING)
        self._thread = threading.Thread(target=self._send_waiting, name="notices", daemon=True)
        self._thread.start()

    def held(self, held: HeldMessage, verdict: Verdict) -> None:
        """Tell ``held.sender`` that their message was held, and why (returns at once)."""
        if held.sender:
            self._post(self.compose(verdict, held.sender, held.queue_id, held), held.sender)

    def removed(self, verdict: Verdict, sender: str | None, queue_id: str | None) -> None:
        """Tell ``sender`` that ``verdict.recipient`` was removed from their message."""
        if sender:
            self._post(self.compose(verdict, sender, queue_id, None), sender)

    def compose(
        self, verdict: Verdict, sender: str, queue_id: str | None, held: HeldMessage | None
    ) -> EmailMessage:
        """The notice about one recipient: held (``held`` given) or removed from the message."""
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = sender
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.from_address.rpartition("@")[2] or None)
        message["Auto-Submitted"] = "auto-replied"
        if held is not None:
            message["Subject"] = f"Held: your message to {verdict.recipient}"
            message["X-Typogate-Hold"] = held.hold_id
            lines = [f"Your message to {verdict.recipient} has been held and not delivered."]
        else:
            message["Subject"] = f"Not delivered to {verdict.recipient}"
            lines = [
                f"Your message was not delivered to {verdict.recipient}; "
                "the other recipients got it."
            ]
        lines += ["", verdict.explanation]
        if verdict.suggested_recipient:
            lines += [
                "",
                f"If you meant {verdict.suggested_recipient}, send it again to that address.",
            ]
        ids = ", ".join(
            part
            for part in (
                f"typogate hold {held.hold_id}" if held is not None else "",
                f"Postfix queue id {queue_id}" if queue_id else "",
            )
            if part
        )
        what = "release the message" if held is not None else "allow the domain"
        lines += [
            "",
            f"If {verdict.domain} is right, ask your mail administrator to {what}"
            + (f" ({ids})." if ids else "."),
        ]
        if held is not None and self.link is not None:
            lines += [
                "",
                "Or release it yourself (the link works once and expires):",
                self.link(held.hold_id),
            ]
        message.set_content("\n".join(lines) + "\n")
        return message

    def close(self, timeout: float = _SEND_TIMEOUT) -> None:
        """Send what is waiting (within ``timeout`` seconds each), then stop the thread."""
        self._waiting.put(None)
        self._thread.join(timeout=timeout * 2)

    def _post(self, message: EmailMessage, recipient: str) -> None:
        try:
            self._waiting.put_nowait((message, recipient))
        except queue.Full:
            self.failed += 1
            log.error("notice to %s dropped: %d wait for the relay", recipient, _MAX_WAITING)

    def _send_waiting(self) -> None:
        while (item := self._waiting.get()) is not None:
            message, recipient = item
            try:
                with smtplib.SMTP(self.relay.host, self.relay.port, timeout=_SEND_TIMEOUT) as smtp:
                    smtp.send_message(message, from_addr="", to_addrs=[recipient])
                self.sent += 1
            except (smtplib.SMTPException, OSError) as error:
                self.failed += 1
                log.error("notice to %s not sent: %s", recipient, error)
