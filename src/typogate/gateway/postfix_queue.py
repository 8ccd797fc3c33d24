"""Postfix's queue, acted on the way an admin does: ``postsuper -H`` releases a held
message, ``postsuper -d`` deletes it. An action in the MTA, not in typogate's store."""

from __future__ import annotations

import subprocess

from typogate.errors import TypogateError
from typogate.vocabulary import HoldState


class QueueError(TypogateError, RuntimeError):
    """Postfix refused the action; the message carries what ``postsuper`` said."""


class PostfixQueue:
    """One Postfix instance's queue (``config_dir`` for ``postsuper -c``; None: the
    system's default instance)."""

    def __init__(self, config_dir: str | None = None) -> None:
        self.config_dir = config_dir

    def release(self, queue_id: str) -> tuple[HoldState, str]:
        """Release one held message; its state afterwards and what Postfix said."""
        return self._postsuper("-H", queue_id, HoldState.RELEASED)

    def delete(self, queue_id: str) -> tuple[HoldState, str]:
        """Delete one queued message for good; its state afterwards and what Postfix said."""
        return self._postsuper("-d", queue_id, HoldState.DELETED)

    def _postsuper(self, flag: str, queue_id: str, done: HoldState) -> tuple[HoldState, str]:
        command = ["postsuper"]
        if self.config_dir:
            command += ["-c", self.config_dir]
        try:
            result = subprocess.run(
                [*command, flag, queue_id], capture_output=True, text=True, timeout=60
            )
        except FileNotFoundError:  # a container, or a box without Postfix
            raise QueueError("postsuper is not installed here: act where Postfix runs") from None
        report = (result.stderr or result.stdout).strip()
        if result.returncode != 0:
            raise QueueError(f"postsuper {flag} {queue_id} failed: {report}")
        if any(word in report for word in ("Requeued", "Released", "Deleted", "released")):
            return done, report
        # Postfix no longer has it (delivered, expired or deleted by hand): nothing to do.
        return HoldState.GONE, report or "not found"
