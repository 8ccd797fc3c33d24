"""typogate's own notice to a sender whose message was held (Postfix sends none for HOLD).

Sent like a bounce: null envelope sender and ``Auto-Submitted: auto-replied`` (RFC 3834), so
it never loops, through the relay the admin names (usually the MTA itself).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from typogate.policy import Verdict
from typogate.store.journal import HeldMessage

log = logging.getLogger(__name__)


class NoticeSender:
    """Sends notices in the background; a failure is logged, never raised into the mail flow."""

    def __init__(
        self,
        relay_host: str,
        relay_port: int,
        from_address: str,
        link: Callable[[str], str] | None = None,
    ) -> None:
        self.relay_host = relay_host
        self.relay_port = relay_port
        self.from_address = from_address
        self.link = link  # hold id -> the sender's signed release link, when configured
        self._pending: set[asyncio.Task[None]] = set()

    def held(self, held: HeldMessage, verdict: Verdict) -> None:
        """Tell ``held.sender`` in the background that their message was held, and why."""
        if not held.sender:
            return
        message = self.compose(verdict, held.sender, held.queue_id, held)
        task = asyncio.get_running_loop().create_task(self.send(message, held.sender))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

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

    async def send(self, message: EmailMessage, recipient: str) -> None:
        """Send one notice now; failures are logged."""
        try:
            await aiosmtplib.send(
                message,
                hostname=self.relay_host,
                port=self.relay_port,
                sender="",
                recipients=[recipient],
                timeout=30,
                start_tls=False,
                use_tls=False,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            log.error("notice to %s not sent: %s", recipient, error)

    async def drain(self) -> None:
        """Wait for notices still being sent (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
