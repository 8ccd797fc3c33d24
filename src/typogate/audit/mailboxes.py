"""Sent-items exports: mbox files, Maildir folders and single .eml messages.

Every address in ``To``, ``Cc`` and ``Bcc`` is a delivery with unknown status (a copy in
sent items says the message left, not what happened to it). Headers that are not valid
UTF-8 or not valid RFC 5322 are read as far as they go; a message that cannot be read at
all is counted as malformed, and the run goes on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

from typogate.audit.deliveries import Delivery, PartResult, Status
from typogate.audit.sources import MAX_LINE
from typogate.vocabulary import AuditFormat

_PARSER = BytesParser(policy=policy.default)
# The headers are all an audit reads of a message (To, Cc, Bcc, From, Date); more than this
# is no header block, and a body is never kept.
MAX_HEADERS = 1024 * 1024


class _Message:
    """The header block of one message, or why it could not be read."""

    def __init__(self, number: int, headers: bytes = b"", problem: str = "") -> None:
        self.number = number
        self.headers = headers
        self.problem = problem


def _header_block(handle: BinaryIO) -> tuple[bytes, str]:
    """The headers at the start of ``handle`` (up to the blank line), or a problem."""
    kept: list[bytes] = []
    size = 0
    while line := handle.readline(MAX_LINE + 1):
        if line in (b"\n", b"\r\n"):
            break
        size += len(line)
        if size > MAX_HEADERS:
            return b"", f"headers longer than {MAX_HEADERS:,} bytes: not a message"
        kept.append(line)
    return b"".join(kept), ""


def _messages(path: Path, kind: AuditFormat) -> Iterator[_Message]:
    if kind is AuditFormat.EML:
        with open(path, "rb") as handle:
            yield _Message(1, *_header_block(handle))
    elif kind is AuditFormat.MAILDIR:
        yield from _maildir(path)
    else:  # mbox: the line number of each "From " separator
        yield from _mbox(path)


def _maildir(path: Path) -> Iterator[_Message]:
    # In the order of mailbox.Maildir's keys (the name before the ":2," flags).
    names = sorted(
        (entry.name.split(":", 1)[0], entry.path)
        for sub in ("new", "cur")
        for entry in os.scandir(path / sub)
        if not entry.name.startswith(".")
    )
    for number, (_, file) in enumerate(names, start=1):
        try:
            if not stat.S_ISREG(os.stat(file).st_mode):
                yield _Message(number, problem="not a regular file")
                continue
            with open(file, "rb") as handle:
                yield _Message(number, *_header_block(handle))
        except OSError as error:
            yield _Message(number, problem=f"cannot read {file}: {error.strerror}")


def _mbox(path: Path) -> Iterator[_Message]:
    """Each message's header block, found line by line; bodies are skipped, not kept."""
    kept: list[bytes] = []
    size, start, number = 0, 0, 0
    in_headers, blank_before, problem = False, True, ""
    with open(path, "rb") as handle:
        while raw := handle.readline(MAX_LINE + 1):
            number += 1
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                while (rest := handle.readline(MAX_LINE + 1)) and not rest.endswith(b"\n"):
                    pass  # the rest of a line too long to be mail: dropped unread
                raw = b"\n"  # read on as if it were a body line
                if in_headers:
                    problem = f"line {number:,} is longer than {MAX_LINE:,} bytes"
            if raw.startswith(b"From ") and blank_before:
                if start:
                    yield _Message(start, b"".join(kept), problem)
                kept, size, start, in_headers, problem = [], 0, number, True, ""
                blank_before = False
                continue
            blank_before = raw in (b"\n", b"\r\n")
            if in_headers:
                if blank_before:
                    in_headers = False
                elif not problem:
                    size += len(raw)
                    if size > MAX_HEADERS:
                        kept, problem = [], f"headers longer than {MAX_HEADERS:,} bytes"
                    else:
                        kept.append(raw)
    if start:
        yield _Message(start, b"".join(kept), problem)


def read(path: Path, kind: AuditFormat, suspect: Callable[[str], bool], result: PartResult) -> None:
    """Read every message of one mbox, Maildir or .eml into ``result`` (headers only)."""
    for message in _messages(path, kind):
        result.lines += 1
        if message.problem:
            result.bad(str(path), message.number, f"unreadable message: {message.problem}")
            continue
        try:
            parsed = _PARSER.parsebytes(message.headers, headersonly=True)
            _take(parsed, str(path), message.number, suspect, result)
        except Exception as error:  # a broken message is reported, never fatal
            result.bad(str(path), message.number, f"unreadable message: {error}")


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
