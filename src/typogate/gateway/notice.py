"""typogate's own notices to a sender whose message was held, or reached all but some
recipients (a milter removed them), or went to an address that may be a typing mistake
(``gateway.warn_notices``). Postfix sends none of these.

Written for the sender, not the administrator: what happened, which address looked wrong
and what it probably should be, the message itself (its recipients, subject and date, as
far as the adapter saw them), and what to do, with the release link (for a warning, the
link that confirms the address) when there is one. No hold ids or queue ids in the text:
the hold id rides in an ``X-Typogate-Hold`` header for an administrator the notice is
forwarded to.

Sent like a bounce: null envelope sender and ``Auto-Submitted: auto-replied`` (RFC 3834), so
they never loop, through the relay the admin names (usually the MTA itself). Sending happens
on a thread of its own: no protocol's thread ever waits for a relay.
"""

from __future__ import annotations

import logging
import queue
import re
import smtplib
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from typogate.domains import (
    ascii_form,
    internal_form,
    printable_form,
    writable_form,
    written_form,
)
from typogate.gateway.answers import unsendable
from typogate.gateway.envelope import Envelope
from typogate.gateway.logfmt import logfmt
from typogate.policy import Verdict
from typogate.store.journal import HeldMessage

log = logging.getLogger(__name__)

_MAX_WAITING = 10_000  # notices waiting for the relay; past this, new ones are dropped
_SEND_TIMEOUT = 30.0
_GREETING_TIMEOUT = 10.0
# At a stop the notices waiting get this long: a relay that never answers must not hold up
# a restart (fail-open mail is unchecked meanwhile) nor the store's last writes behind it.
_STOP_SECONDS = 5.0
_STOPPED = "typogate stopped before the relay took it"


@dataclass(frozen=True, slots=True)
class Relay:
    """Where notices are handed over: an SMTP server that accepts them for delivery."""

    host: str
    port: int


class NoticeSender:
    """Sends notices from a thread of its own; a failure is logged, never raised into the
    mail flow. :meth:`close` sends what is waiting, then stops."""

    def __init__(
        self,
        relay: Relay,
        from_address: str,
        link: Callable[[str], str] | None = None,
        link_hours: float = 72.0,
        confirm_link: Callable[[str, Sequence[Verdict], bool], str] | None = None,
    ) -> None:
        self.relay = relay
        self.from_address = from_address
        self.link = link  # hold id -> the sender's signed release link, when configured
        self.link_hours = link_hours
        # (sender, verdicts, delivered to them?) -> the link that confirms their addresses
        self.confirm_link = confirm_link
        self.sent = 0
        self.failed = 0
        self._waiting: queue.Queue[tuple[EmailMessage, str] | None] = queue.Queue(_MAX_WAITING)
        self._stop_at: float | None = None  # monotonic time after which nothing is sent
        self._session: smtplib.SMTP | None = None  # the relay's connection, while one is open
        self._thread = threading.Thread(target=self._send_waiting, name="notices", daemon=True)
        self._thread.start()

    def held(self, held: HeldMessage, verdicts: Sequence[Verdict], envelope: Envelope) -> None:
        """Tell the sender that their message was held, and why (returns at once)."""
        if held.sender and self._can_write_to(held.sender):
            self._post(self.compose_held(held, verdicts, envelope), held.sender)

    def removed(
        self,
        verdicts: Sequence[Verdict],
        envelope: Envelope,
        delivered: Sequence[str],
        *,
        confirmable: bool = False,
    ) -> None:
        """Tell the sender that these recipients were removed from their message, which
        went to ``delivered`` (returns at once). ``confirmable``: the sender may confirm
        them with a link, and then send the message again."""
        if envelope.sender and verdicts and self._can_write_to(envelope.sender):
            message = self.compose_removed(verdicts, envelope, delivered, confirmable=confirmable)
            self._post(message, envelope.sender)

    def warned(
        self, verdicts: Sequence[Verdict], envelope: Envelope, *, confirmable: bool = False
    ) -> None:
        """Tell the sender that these recipients, to whom the message went, look like a
        possible mistake (``gateway.warn_notices``; returns at once). ``confirmable``: the
        sender may confirm them with a link (see :mod:`typogate.gateway.confirmation`)."""
        if envelope.sender and verdicts and self._can_write_to(envelope.sender):
            message = self.compose_warned(verdicts, envelope, confirmable=confirmable)
            self._post(message, envelope.sender)

    def compose_warned(
        self, verdicts: Sequence[Verdict], envelope: Envelope, *, confirmable: bool = False
    ) -> EmailMessage:
        """The notice for a message delivered to an address that may be a typing mistake;
        with ``confirmable`` (and links in use), the link that says it is right."""
        wrong = ", ".join(_shown(v.recipient) for v in verdicts)
        theirs = _quoted_subject(envelope)
        subject = f"Check the address {wrong}"
        message = self._message(envelope, f"{subject}: {theirs}" if theirs else subject)
        one = len(verdicts) == 1
        lines = [
            "Your message was delivered, but "
            + ("this address" if one else "these addresses")
            + (" may be a typing mistake:" if one else " may be typing mistakes:"),
            "",
            *_wrong_addresses(verdicts),
            "What to do",
            "",
        ]
        meant = _all_meant(verdicts)
        if meant:
            lines += _bullet(
                f"If you meant {meant}: send your message again to "
                f"{'that address' if one else 'those addresses'}, and tell "
                f"{'its' if one else 'their'} reader it went astray."
            )
        right = f"If {wrong} {'is' if one else 'are'} right"
        domains = " and ".join(dict.fromkeys(v.domain for v in verdicts))
        confirm = self._confirm_link(verdicts, envelope, confirmable, delivered=True)
        if confirm:
            lines += _bullet(
                f"{right}: say so with this link, and typogate will stop questioning your "
                f"mail to {domains} (it works once, for {self.link_hours:g} hours):",
                gap=False,
            )
            lines += confirm
        else:
            lines += _bullet(
                f"{right}: nothing to do. If you write there often, ask your mail "
                f"administrator to allow {domains} for you."
            )
        _set_text(message, lines)
        return message

    def compose_held(
        self, held: HeldMessage, verdicts: Sequence[Verdict], envelope: Envelope
    ) -> EmailMessage:
        """The notice for a held message: what happened, which address looked wrong and
        what it probably should be, the message (recipients, subject, date), what to do."""
        wrong = ", ".join(_shown(v.recipient) for v in verdicts)
        theirs = _quoted_subject(envelope)
        message = self._message(
            envelope,
            f"Not sent yet: {theirs} - check the address {wrong}"
            if theirs
            else f"Not sent yet - check the address {wrong}",
        )
        message["X-Typogate-Hold"] = held.hold_id  # for the administrator, not in the text
        one = len(verdicts) == 1
        lines = [
            "Your message has been held: it has not been delivered to anyone yet, because",
            f"{'an address' if one else 'some addresses'} on it look{'s' if one else ''} "
            "like a typing mistake.",
            "",
            *_wrong_addresses(verdicts),
            *_the_message(envelope, held),
            "What to do",
            "",
        ]
        meant = _all_meant(verdicts)
        if meant:
            lines += _bullet(
                f"If you meant {meant}: send your message again to the corrected "
                f"address{'' if one else 'es'}. The held copy stays held and is not delivered."
            )
        right = f"If {wrong} {'is' if one else 'are'} right"
        if self.link is None:
            lines += _bullet(
                f"{right}: ask your mail administrator to release the message "
                "(forward them this notice)."
            )
        else:
            lines += _bullet(
                f"{right}: release the message yourself with this link (it "
                f"works once, for {self.link_hours:g} hours):",
                gap=False,
            )
            lines += ["", f"    {self.link(held.hold_id)}", ""]
            lines += ["  or ask your mail administrator to release it.", ""]
        _set_text(message, lines)
        return message

    def compose_removed(
        self,
        verdicts: Sequence[Verdict],
        envelope: Envelope,
        delivered: Sequence[str],
        *,
        confirmable: bool = False,
    ) -> EmailMessage:
        """The notice for recipients removed from a message that went to ``delivered``
        (the others, as the adapter was given them); with ``confirmable`` (and links in
        use), the link that says they are right."""
        wrong = ", ".join(_shown(v.recipient) for v in verdicts)
        theirs = _quoted_subject(envelope)
        subject = f"Not delivered to {wrong}"
        message = self._message(envelope, f"{subject}: {theirs}" if theirs else subject)
        one = len(verdicts) == 1
        lines = [
            "Your message was delivered to its other recipients, but not to "
            + ("this address," if one else "these addresses,"),
            "which looks like a typing mistake:" if one else "which look like typing mistakes:",
            "",
            *_wrong_addresses(verdicts),
            *_the_message(envelope, None, delivered=delivered),
            "What to do",
            "",
        ]
        meant = _all_meant(verdicts)
        if meant:
            lines += _bullet(
                f"If you meant {meant}: send your message again to "
                f"{'that address' if one else 'those addresses'} only (the others have it)."
            )
        domains = " and ".join(dict.fromkeys(v.domain for v in verdicts))
        right = f"If {wrong} {'is' if one else 'are'} right"
        confirm = self._confirm_link(verdicts, envelope, confirmable, delivered=False)
        if confirm:
            lines += _bullet(
                f"{right}: say so with this link, then send your message again to "
                f"{'it' if one else 'them'}: typogate will let it through (the link works "
                f"once, for {self.link_hours:g} hours):",
                gap=False,
            )
            lines += confirm
        else:
            lines += _bullet(
                f"{right}: ask your mail administrator to allow {domains}, then send your "
                "message again."
            )
        _set_text(message, lines)
        return message

    def _confirm_link(
        self, verdicts: Sequence[Verdict], envelope: Envelope, confirmable: bool, *, delivered: bool
    ) -> list[str]:
        """The lines of the link that confirms the addresses of ``verdicts``, set apart;
        none where the sender's word would not count (``confirmable``) or links are off."""
        if not (confirmable and self.confirm_link is not None and envelope.sender):
            return []
        return ["", f"    {self.confirm_link(envelope.sender, verdicts, delivered)}", ""]

    def _message(self, envelope: Envelope, subject: str) -> EmailMessage:
        """The notice's headers."""
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = _mailbox(envelope.sender or "")
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.from_address.rpartition("@")[2] or None)
        message["Auto-Submitted"] = "auto-replied"
        reference = _reference(envelope.message_id)
        if reference:  # the sender's mail program shows the notice in its thread
            message["In-Reply-To"] = reference
            message["References"] = reference
        return message

    def close(self, timeout: float = _STOP_SECONDS) -> None:
        """Send what is waiting for at most ``timeout`` seconds, then stop. A notice the
        relay has not taken by then is logged as not sent, as any notice that fails."""
        self._stop_at = time.monotonic() + timeout
        with suppress(queue.Full):  # a full queue: the thread sees the stop time instead
            self._waiting.put_nowait(None)
        self._thread.join(timeout)
        if self._thread.is_alive():  # still waiting for the relay: end that wait
            session = self._session
            if session is not None and session.sock is not None:
                with suppress(OSError):
                    session.sock.shutdown(socket.SHUT_RDWR)
            self._thread.join(1.0)
        while True:  # what the thread never reached
            try:
                item = self._waiting.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._not_sent(item[1], _STOPPED)

    def _can_write_to(self, sender: str) -> bool:
        """Whether a notice can be addressed to ``sender``; logs why not."""
        # sendmail -f takes any bytes from a local user (U+FFFD marks where the milter
        # read one that was not UTF-8), and Postfix takes a control character: no header
        # carries those, and the notice would go to someone else.
        why = "is not valid UTF-8" if "\ufffd" in sender else unsendable(sender)
        if why is not None:
            self._not_sent(sender, f"the sender address {why}")
            return False
        return True

    def _post(self, message: EmailMessage, recipient: str) -> None:
        try:
            # smtplib reads the address again (email.utils.parseaddr): unquoted, as the
            # policy service is handed it, "bob<carol"@example.org would be carol@...
            self._waiting.put_nowait((message, written_form(recipient)))
        except queue.Full:
            self.failed += 1
            log.error("notice to %s dropped: %d wait for the relay", recipient, _MAX_WAITING)

    def _send_waiting(self) -> None:
        self._greet_relay()
        while (item := self._waiting.get()) is not None:
            message, recipient = item
            if self._stopped():
                self._not_sent(recipient, _STOPPED)
                continue
            try:
                with self._connected(_SEND_TIMEOUT) as smtp:
                    smtp.send_message(message, from_addr="", to_addrs=[recipient])
                self.sent += 1
            except (smtplib.SMTPException, OSError) as error:
                why = _STOPPED if self._stopped() else str(error) or type(error).__name__
                self._not_sent(recipient, why)

    def _stopped(self) -> bool:
        """Whether :meth:`close` was called and its time is up."""
        return self._stop_at is not None and time.monotonic() >= self._stop_at

    @contextmanager
    def _connected(self, timeout: float) -> Iterator[smtplib.SMTP]:
        """A session with the relay that :meth:`close` can end while it waits."""
        # Connected after it is known here: the relay's greeting is the longest wait.
        smtp = smtplib.SMTP(timeout=timeout)
        self._session = smtp
        try:
            smtp.connect(self.relay.host, self.relay.port)
            with smtp:
                yield smtp
        finally:
            self._session = None
            smtp.close()

    def _not_sent(self, recipient: str, why: str) -> None:
        self.failed += 1
        log.error(
            logfmt(
                event="notice",
                outcome="not-sent",
                to=recipient,
                relay=f"{self.relay.host}:{self.relay.port}",
                error=why,
            )
        )

    def _greet_relay(self) -> None:
        """Say at start, once, when the relay does not answer: until it does, senders of
        held or trimmed mail are not told (each notice lost is logged as well)."""
        try:
            with self._connected(_GREETING_TIMEOUT):
                pass
        except (smtplib.SMTPException, OSError) as error:
            log.warning(
                "notices: no mail server answers on %s:%d (%s): senders of held or trimmed "
                "mail are not told until one does (gateway.notice_relay; typogate doctor "
                "checks it)",
                self.relay.host,
                self.relay.port,
                error or type(error).__name__,
            )


_WIDTH = 72


def _quoted_subject(envelope: Envelope) -> str:
    """The message's own subject in quotes, for the notice's subject; "" when unknown."""
    subject = _one_line(envelope.subject or "")
    return f'"{subject}"' if subject else ""


def _set_text(message: EmailMessage, lines: list[str]) -> None:
    text = "\n".join(lines)
    # Quoted-printable keeps an ASCII text readable as it travels (an accented subject
    # would otherwise turn the whole text into base64).
    message.set_content(text, cte="7bit" if text.isascii() else "quoted-printable")


def _wrong_addresses(verdicts: Sequence[Verdict]) -> list[str]:
    lines: list[str] = []
    for verdict in verdicts:
        # The "Did you mean" question is answered on the next line, with the address.
        why = verdict.explanation.removesuffix(f" Did you mean {verdict.suggestion}?")
        recipient = _shown(verdict.recipient)
        lines += [f"  {recipient}"]
        if (written := ascii_form(recipient)) != recipient:  # a look-alike, shown for what it is
            lines += [f"  (written {written})"]
        lines += textwrap.wrap(why, _WIDTH, initial_indent="    ", subsequent_indent="    ")
        meant = _meant(verdict)
        if meant:
            lines += [f"    Probably meant: {meant}"]
        lines += [""]
    return lines


def _all_meant(verdicts: Sequence[Verdict]) -> str | None:
    """What the sender probably meant instead of each address; None unless known for all."""
    meant = [_meant(verdict) for verdict in verdicts]
    if not all(meant):
        return None
    return " and ".join(f"({m})" if " or " in m and len(meant) > 1 else m for m in meant if m)


def _meant(verdict: Verdict) -> str | None:
    """The address (or addresses, when more than one is as likely) the sender probably
    meant; None when typogate has no suggestion (a blocked domain)."""
    if verdict.suggested_recipient:
        return printable_form(verdict.suggested_recipient)
    local = verdict.recipient.rpartition("@")[0]
    if verdict.alternatives and local:
        return " or ".join(_shown(f"{local}@{domain}") for domain in verdict.alternatives)
    return None


def _the_message(
    envelope: Envelope,
    held: HeldMessage | None,
    *,
    delivered: Sequence[str] | None = None,
) -> list[str]:
    """The held or trimmed message, as its sender knows it: subject, date, recipients,
    and for a trimmed one the recipients it was ``delivered`` to.

    The milter sees the whole message; the policy service answers at RCPT, before the
    message's headers are sent, and sees one recipient at a time: it says so.
    """
    lines = ["The message", ""]
    if envelope.subject is not None:
        lines += _field("Subject", _one_line(envelope.subject) or "(no subject)")
    if envelope.date:
        lines += _field("Date", _one_line(envelope.date))
    elif held is not None:
        lines += _field("Sent", held.time.strftime("%d %b %Y %H:%M UTC") + " (when it was held)")
    recipients = [printable_form(r) for r in envelope.recipients] or (
        [] if held is None else [_shown(r) for r in held.recipients]
    )
    lines += _field("To", ", ".join(recipients))
    if delivered is not None:
        lines += _field("Delivered to", ", ".join(map(printable_form, delivered)))
    elif not envelope.recipients:
        lines += [
            "",
            *textwrap.wrap(
                "typogate checked this address as your mail program named it, before the "
                "rest of the message was sent: it cannot show the subject or the other "
                "recipients, but the whole message is held, for all of them.",
                _WIDTH,
                initial_indent="  ",
                subsequent_indent="  ",
            ),
        ]
    return [*lines, ""]


def _field(name: str, value: str) -> list[str]:
    return textwrap.wrap(
        value or "-",
        _WIDTH,
        initial_indent=f"  {name + ':':<14}",
        subsequent_indent=" " * 16,
        break_on_hyphens=False,
    )


def _bullet(text: str, *, gap: bool = True) -> list[str]:
    lines = textwrap.wrap(text, _WIDTH, initial_indent="- ", subsequent_indent="  ")
    return [*lines, ""] if gap else lines


def _shown(address: str) -> str:
    """An address as its sender writes it, with what would not show as itself (a control
    character) written as its escape: for a header and the text."""
    return printable_form(written_form(address))


def _mailbox(address: str) -> Address:
    """The notice's To: built from its parts, never parsed. Python's address parser raises
    on some addresses that RFC 5321 allows (``" :]"@example.org``, which the policy
    service is handed unquoted); the header quotes the local part as it needs."""
    local, at, domain = internal_form(address).rpartition("@")
    return Address(username=local, domain=domain) if at else Address(username=address)


def _reference(message_id: str | None) -> str | None:
    """The message's Message-ID, unfolded, for In-Reply-To; None when it is no single
    line of text (a form feed in it would make the notice impossible to write)."""
    if not message_id:
        return None
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", message_id).strip()
    return unfolded if unfolded.isprintable() else None


def _one_line(text: str) -> str:
    """A header as people read it: RFC 2047 words decoded, on one line, not too long."""
    # A raw 8-bit byte (an old mail program's Latin-1) shows as U+FFFD, not as nothing.
    text = writable_form(text)
    with suppress(HeaderParseError, UnicodeError, LookupError):  # else shown as it came
        text = str(make_header(decode_header(text)))
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= 200 else flat[:199] + "…"
