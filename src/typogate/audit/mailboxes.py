"""Sent-items exports: mbox files, Maildir folders and single .eml messages.

Every address in ``To``, ``Cc`` and ``Bcc`` is a delivery with unknown status (a copy in
sent items says the message left, not what happened to it). Headers that are not valid
UTF-8 or not valid RFC 5322 are read as far as they go; a message that cannot be read at
all is counted as malformed, and the run goes on.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from typogate.audit.deliveries import Delivery, PartResult, Status
from typogate.vocabulary import AuditFormat

_PARSER = BytesParser(policy=policy.default)


def _messages(path: Path, kind: AuditFormat) -> Iterator[tuple[int, bytes]]:
    if kind is AuditFormat.EML:
        yield 1, path.read_bytes()
    elif kind is AuditFormat.MAILDIR:
        box = mailbox.Maildir(path, factory=None, create=False)
        for number, key in enumerate(sorted(box.keys()), start=1):
            yield number, box.get_bytes(key)
    else:  # mbox: the line number of each "From " separator
        yield from _mbox(path)


def _mbox(path: Path) -> Iterator[tuple[int, bytes]]:
    lines: list[bytes] = []
    start = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.startswith(b"From ") and (not lines or lines[-1] in (b"\n", b"\r\n")):
                if lines:
                    yield start, b"".join(lines)
                lines, start = [], number
                continue
            lines.append(raw)
    if lines:
        yield start, b"".join(lines)


def read(path: Path, kind: AuditFormat, suspect: Callable[[str], bool], result: PartResult) -> None:
    """Read every message of one mbox, Maildir or .eml into ``result``."""
    for number, raw in _messages(path, kind):
        result.lines += 1
        try:
            message = _PARSER.parsebytes(raw)
            _take(message, str(path), number, suspect, result)
        except Exception as error:  # a broken message is reported, never fatal
            result.bad(str(path), number, f"unreadable message: {error}")


def _header(message: EmailMessage, name: str) -> list[str]:
    try:
        return [str(value) for value in message.get_all(name, [])]
    except Exception:  # a header the parser cannot decode: fall back to its raw text
        return [value for key, value in message.raw_items() if key.lower() == name.lower()]


def _take(
    message: EmailMessage,
    source: str,
    number: int,
    suspect: Callable[[str], bool],
    result: PartResult,
) -> None:
    recipients = [
        address
        for _, address in getaddresses(
            _header(message, "To") + _header(message, "Cc") + _header(message, "Bcc")
        )
        if "@" in address
    ]
    if not recipients:
        result.bad(source, number, "no To/Cc/Bcc address")
        return
    senders = [address for _, address in getaddresses(_header(message, "From"))]
    sender = senders[0] if senders else ""
    date = (_header(message, "Date") or [""])[0]
    try:
        when = parsedate_to_datetime(date)
        time, month = when.isoformat(), when.strftime("%Y-%m")
    except (TypeError, ValueError, IndexError):
        time, month = date, ""
    result.messages += 1
    for recipient in recipients:
        result.deliveries += 1
        result.count(Status.UNKNOWN)
        domain = recipient.rpartition("@")[2].lower().rstrip(">")
        result.domains[domain] = result.domains.get(domain, 0) + 1
        if suspect(domain):
            result.suspects.append(
                Delivery(time, month, sender, recipient, Status.UNKNOWN, source, number)
            )
