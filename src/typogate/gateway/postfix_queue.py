"""Postfix's queue, acted on the way an admin does: ``postsuper -H`` releases a held
message, ``postsuper -d`` deletes it; ``postqueue -j`` says what the queue holds. An action
in the MTA, not in typogate's store.

Only a well-formed queue id is ever handed to ``postsuper``: ``ALL``, a queue name, ``-``
(read ids from stdin) or anything with odd characters would act on other messages.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from typogate.errors import TypogateError
from typogate.vocabulary import HoldState

# Postfix's two queue-id forms (global/mail_queue.h). Short (the default): the time's
# microseconds as exactly five upper-case hex digits, then the inode number in hex.
# Long (enable_long_queue_ids = yes): seconds (six or more) and microseconds (exactly four)
# in a 52-letter alphabet without vowels, a 'z', then the inode number in the same alphabet
# less the 'z'. Bounded: an inode number has at most 16 hex digits.
_SAFE = "0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z"
_SAFE_NO_Z = "0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y"
_QUEUE_ID = re.compile(rf"[0-9A-F]{{6,21}}|[{_SAFE}]{{10,16}}z[{_SAFE_NO_Z}]{{1,16}}")
HOLD_QUEUE = "hold"


def valid_queue_id(text: str | None) -> bool:
    """Whether ``text`` is a Postfix queue id (short or long form), and nothing else."""
    return text is not None and _QUEUE_ID.fullmatch(text) is not None


class QueueError(TypogateError, RuntimeError):
    """Postfix refused the action or cannot be asked; the message says what it said."""


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One message in Postfix's queue, as ``postqueue -j`` lists it."""

    queue_id: str
    queue_name: str  # hold, incoming, active, deferred, maildrop
    sender: str
    recipients: tuple[str, ...]
    arrival: float  # seconds since the epoch

    @property
    def held(self) -> bool:
        """Whether the message waits in the hold queue."""
        return self.queue_name == HOLD_QUEUE


class PostfixQueue:
    """One Postfix instance's queue (``config_dir`` for ``-c``; None: the system's default
    instance)."""

    def __init__(self, config_dir: str | None = None) -> None:
        self.config_dir = config_dir

    def messages(self) -> Iterator[QueuedMessage]:
        """Every message in the queue (``postqueue -j``, read as it streams: a big queue
        is never held in memory). Raises :class:`QueueError` when Postfix cannot be asked
        (not running, no such instance)."""
        command = ["postqueue", *self._instance(), "-j"]
        try:
            listing = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        except FileNotFoundError:  # a container, or a box without Postfix
            raise QueueError("postqueue is not installed here: act where Postfix runs") from None
        with listing:
            assert listing.stdout is not None and listing.stderr is not None
            for line in listing.stdout:
                try:
                    entry = json.loads(line)
                    yield QueuedMessage(
                        queue_id=str(entry["queue_id"]),
                        queue_name=str(entry["queue_name"]),
                        sender=str(entry.get("sender", "")),
                        recipients=tuple(str(r["address"]) for r in entry.get("recipients", [])),
                        arrival=float(entry.get("arrival_time", 0)),
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # a line this version of typogate cannot read: not ours to act on
            complaint = listing.stderr.read().strip()
            if listing.wait(timeout=60) != 0:
                raise QueueError(f"postqueue -j failed: {complaint or 'no reason given'}")

    def find(self, queue_id: str) -> QueuedMessage | None:
        """The message with this queue id, wherever it is in the queue; None when Postfix
        has no such message (a malformed id is never looked up)."""
        if not valid_queue_id(queue_id):
            return None
        found = None
        for message in self.messages():
            if message.queue_id == queue_id:
                found = message  # read on to the end: postqueue is waited for
        return found

    def release(self, queue_id: str) -> tuple[HoldState, str]:
        """Release one held message; its state afterwards and what Postfix said."""
        return self._postsuper("-H", queue_id, HoldState.RELEASED)

    def delete(self, queue_id: str) -> tuple[HoldState, str]:
        """Delete one held message for good (from the hold queue only); its state
        afterwards and what Postfix said."""
        return self._postsuper("-d", queue_id, HoldState.DELETED)

    def _instance(self) -> list[str]:
        return ["-c", self.config_dir] if self.config_dir else []

    def _postsuper(self, flag: str, queue_id: str, done: HoldState) -> tuple[HoldState, str]:
        if not valid_queue_id(queue_id):
            raise QueueError(f"{queue_id!r} is not a Postfix queue id; nothing was done")
        # Only the hold queue: -d would otherwise look in every queue.
        command = ["postsuper", *self._instance(), flag, queue_id, HOLD_QUEUE]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:  # a container, or a box without Postfix
            raise QueueError("postsuper is not installed here: act where Postfix runs") from None
        report = (result.stderr or result.stdout).strip()
        if result.returncode != 0:
            raise QueueError(f"postsuper {flag} {queue_id} failed: {report}")
        if any(word in report for word in ("Requeued", "Released", "Deleted", "released")):
            return done, report
        # Postfix no longer has it (delivered, expired or deleted by hand): nothing to do.
        return HoldState.GONE, report or "not found"
