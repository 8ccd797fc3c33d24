"""What a held message says of itself, for the sender's release page: its subject, when it
was written and every recipient (the hold names only those that held it).

A Postfix hold is made at RCPT time, before the message exists; so the web reads these from
Postfix's queue file (``postcat -ehq``) or the milter's quarantine copy when the hold is
first shown, and keeps them on the hold record, where they stay after the message is gone.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from typogate.domains import writable_form
from typogate.errors import HoldError
from typogate.gateway.postfix_queue import valid_queue_id
from typogate.gateway.quarantine import Quarantine
from typogate.store.records import HoldRecord

_MAX_HEADERS = 256 * 1024
_PARSER = BytesParser(policy=policy.default)


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """The subject ("" for none), the Date header and every envelope recipient."""

    subject: str
    written: datetime | None
    recipients: list[str]


def described(quarantine: Quarantine, hold: HoldRecord) -> HoldRecord:
    """``hold`` with its subject, date and recipients, read from the message the first time
    (and kept); as it was when the message cannot be read (then asked again next time).

    A Postfix hold's message is the one :meth:`Quarantine.held_message` finds in the real
    hold queue (same sender and recipients), never simply the queue id the hold recorded:
    a forged policy request may name another message's id, whose subject and recipients
    are not the forger's to see."""
    if hold.described:
        return hold
    facts = None
    if hold.message_path:
        facts = from_file(Path(hold.message_path), hold.recipients)
    else:
        try:
            message = quarantine.held_message(hold)
        except HoldError:
            return hold
        facts = from_queue(message.queue_id, quarantine.queue.config_dir)
    if facts is None:
        return hold
    kept = quarantine.holds.describe(hold.hold_id, facts.subject, facts.written, facts.recipients)
    return kept or hold


def from_queue(queue_id: str, postfix_config: str | None) -> MessageFacts | None:
    """The facts of a message in Postfix's queue (any of its queues), or None."""
    if not valid_queue_id(queue_id):
        return None
    command = ["postcat", *(["-c", postfix_config] if postfix_config else []), "-ehq", queue_id]
    try:
        done = subprocess.run(command, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return parse_postcat(done.stdout)


def parse_postcat(output: bytes) -> MessageFacts:
    """The facts in ``postcat -eh`` output: envelope ``recipient:`` records, then headers."""
    recipients: list[str] = []
    headers: list[bytes] = []
    part = b""
    for line in output.splitlines(keepends=True):
        if line.startswith(b"*** "):
            part = line.split(b" ")[1]  # ENVELOPE, MESSAGE, HEADER
            continue
        if part == b"ENVELOPE" and line.startswith(b"recipient: "):
            recipients.append(line[11:].strip().decode("utf-8", "replace"))
        elif part == b"MESSAGE" and sum(map(len, headers)) < _MAX_HEADERS:
            headers.append(line)
    return _facts(b"".join(headers), recipients)


def from_file(path: Path, held_for: list[str]) -> MessageFacts | None:
    """The facts of the milter's quarantine copy: its headers; the recipients are those
    of To and Cc with the ones that held it."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_MAX_HEADERS)
    except OSError:
        return None
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    facts = _facts(block, [])
    named = [a for _, a in getaddresses(_all(block, "To") + _all(block, "Cc")) if "@" in a]
    recipients = list(dict.fromkeys([*held_for, *named]))
    return MessageFacts(facts.subject, facts.written, recipients)


def _all(block: bytes, name: str) -> list[str]:
    message = _PARSER.parsebytes(block + b"\n\n", headersonly=True)
    return [str(value) for value in message.get_all(name, [])]


def _facts(block: bytes, recipients: list[str]) -> MessageFacts:
    message = _PARSER.parsebytes(block + b"\n\n", headersonly=True)
    try:
        subject = " ".join(str(message.get("Subject", "")).split())
    except (ValueError, TypeError):  # a header the parser cannot decode: its raw text
        subject = next((v for k, v in message.raw_items() if k.lower() == "subject"), "")
    # Anyone may write a NUL (=?utf-8?q?=00?=) that the hold record could not keep.
    subject = writable_form(subject)
    written = None
    try:
        date = parsedate_to_datetime(str(message.get("Date", "")))
        written = date if date.tzinfo is not None else date.replace(tzinfo=UTC)
    except (TypeError, ValueError, IndexError):
        pass
    return MessageFacts(subject, written, recipients)
