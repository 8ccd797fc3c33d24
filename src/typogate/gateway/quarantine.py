"""Hold and release: what a person does with a held message.

Held messages sit in Postfix's hold queue (a policy-service HOLD or a milter quarantine);
typogate's record says which queue id Postfix gave, when it gave one. An admin releases
(``postsuper -H``) or deletes (``postsuper -d``, only with confirmation); a sender releases
their own message with a signed, expiring, one-use link. Every action lands in the audit
trail. Releasing twice is harmless: the second release reports the first and changes
nothing.

A release touches exactly one message, the one the hold is about: its queue id is checked
against the real queue (in the hold queue, same sender, same recipients, arrived around the
hold) before it is handed to ``postsuper``, so a forged policy request naming ``ALL``, a
queue name or another message's id releases nothing. The action is recorded as an intent
first, then Postfix acts, then the store records what Postfix did; a crash in between is
finished on the next start (:meth:`Quarantine.finish_interrupted`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from typogate.domains import InvalidAddress, read_destination
from typogate.errors import HoldError
from typogate.gateway.logfmt import logfmt
from typogate.gateway.postfix_queue import PostfixQueue, QueuedMessage, QueueError
from typogate.store.holds import ActionUnderWay, Holds
from typogate.store.records import HoldIntent, HoldRecord, TrailEntry
from typogate.vocabulary import HoldAction, HoldState

log = logging.getLogger(__name__)

_SALT = "typogate-release-link"
MIN_SECRET = 16
# Postfix dates a message from its MAIL FROM (the listing's arrival_time, in whole seconds),
# which comes before any of its recipients is held, and at most a long session before.
_SESSION_SECONDS = 3600.0
_CLOCK_SECONDS = 2.0
# An intent older than this, recorded on another host, was left by a crash there.
_STALE_SECONDS = 90.0


class UnknownHold(HoldError):
    """No held message has that id."""


class ConfirmationRequired(HoldError):
    """Deleting a held message needs an explicit confirmation."""


class InvalidReleaseLink(HoldError):
    """A release link that was tampered with, has expired, or was already used."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did: the hold's state afterwards and a sentence for people."""

    hold_id: str
    state: HoldState
    message: str


def link_signer(secret: str) -> URLSafeTimedSerializer:
    """What signs and checks release links (the secret of ``release.secret``)."""
    return URLSafeTimedSerializer(secret, salt=_SALT)


def release_link(signer: URLSafeTimedSerializer, hold_id: str, base_url: str) -> str:
    """A signed link that lets the sender release ``hold_id`` once, until it expires."""
    token = signer.dumps({"hold": hold_id, "nonce": uuid.uuid4().hex})
    return f"{base_url.rstrip('/')}/release/{token}"


class Quarantine:
    """Release and delete the held messages of ``holds`` in Postfix's ``queue``.

    ``secret`` signs release links (none: no links).
    """

    def __init__(
        self,
        holds: Holds,
        queue: PostfixQueue | None = None,
        secret: str | None = None,
        released: Callable[[HoldRecord], None] | None = None,
    ) -> None:
        """``released`` is told of every message released (the relationships learn that
        its sender meant those recipients)."""
        if secret is not None and len(secret) < MIN_SECRET:
            raise HoldError(f"the release-link secret must be at least {MIN_SECRET} characters")
        self.holds = holds
        self.queue = queue or PostfixQueue()
        self._links = link_signer(secret) if secret else None
        self._released = released

    def _signer(self) -> URLSafeTimedSerializer:
        if self._links is None:
            raise HoldError("release links need release.secret in the configuration")
        return self._links

    def release(self, hold_id: str, actor: str, why: str) -> Outcome:
        """Release a held message to its recipients. Harmless when already released."""
        return self._act(hold_id, HoldAction.RELEASE, actor, why)

    def delete(self, hold_id: str, actor: str, why: str, *, confirm: bool = False) -> Outcome:
        """Delete a held message for good; refuses without ``confirm=True``."""
        if not confirm:
            raise ConfirmationRequired(f"deleting hold {hold_id} needs confirmation")
        return self._act(hold_id, HoldAction.DELETE, actor, why)

    def release_link(self, hold_id: str, base_url: str) -> str:
        """A signed link that lets the sender release this hold once."""
        return release_link(self._signer(), hold_id, base_url)

    def read_link(self, token: str, max_age: int) -> HoldRecord:
        """The hold a release link is for, without using the link; raises
        :class:`InvalidReleaseLink` if it is tampered, older than ``max_age`` s, or used."""
        hold_id, nonce = self._open_link(token, max_age)
        if self.holds.link_spent(nonce):
            raise InvalidReleaseLink("this release link was already used")
        hold = self.holds.get(hold_id)
        if hold is None:
            raise InvalidReleaseLink("this release link names no held message")
        return hold

    def _open_link(self, token: str, max_age: int) -> tuple[str, str]:
        try:
            data = self._signer().loads(token, max_age=max_age)
        except SignatureExpired:
            raise InvalidReleaseLink("this release link has expired") from None
        except BadSignature:
            raise InvalidReleaseLink("this release link is not valid") from None
        return str(data["hold"]), str(data["nonce"])

    def release_by_link(self, token: str, max_age: int) -> Outcome:
        """Release through a link: refused if tampered, older than ``max_age`` s, or used."""
        hold_id, nonce = self._open_link(token, max_age)
        hold = self.holds.get(hold_id)
        sender, recipients = (hold.sender or "", hold.recipients) if hold else ("", [])
        if not self.holds.spend_link(nonce, hold_id, sender, recipients):
            raise InvalidReleaseLink("this release link was already used")
        return self.release(hold_id, "sender (release link)", "released by the sender's link")

    def trail(self, hold_id: str | None = None) -> list[TrailEntry]:
        """The audit trail, oldest first."""
        return self.holds.trail(hold_id)

    def _act(self, hold_id: str, action: HoldAction, actor: str, why: str) -> Outcome:
        """Carry out ``action`` and log it, done or refused, in one line (docs/operations.md)."""
        try:
            outcome = self._do(hold_id, action, actor, why)
        except HoldError as error:
            log.warning(
                logfmt(event=action, hold=hold_id, outcome="refused", actor=actor, error=error)
            )
            raise
        log.info(
            logfmt(
                event=action,
                hold=hold_id,
                outcome=outcome.state,
                actor=actor,
                why=why,
                detail=outcome.message,
            )
        )
        return outcome

    def _do(self, hold_id: str, action: HoldAction, actor: str, why: str) -> Outcome:
        hold = self.holds.get(hold_id)
        if hold is None:
            raise UnknownHold(f"no hold {hold_id}")
        if hold.state is HoldState.HELD:
            message = self.held_message(hold)
            now = datetime.now(UTC)
            intent = HoldIntent(hold_id, action, message.queue_id, actor, why, now, _owner())
            try:
                before = self.holds.intend(intent)
            except ActionUnderWay:
                # Left by a crash since this process started? Finish that, then try again.
                self.finish_interrupted()
                try:
                    before = self.holds.intend(intent)
                except ActionUnderWay as error:
                    raise HoldError(str(error)) from None
            if before is None:
                raise UnknownHold(f"no hold {hold_id}")
            if before.state is HoldState.HELD:  # recorded: now Postfix acts, then the store
                state, sentence = self._carry_out(intent, before)
                return Outcome(hold_id, state, sentence)
            hold = before  # someone else acted in the meantime
        sentence = f"hold {hold_id} was already {hold.state}"
        self.holds.note(hold_id, action, actor, why, sentence)
        return Outcome(hold_id, hold.state, sentence)

    def _carry_out(
        self, intent: HoldIntent, hold: HoldRecord, finishing: bool = False
    ) -> tuple[HoldState, str]:
        """Have Postfix act on the intent's one queue id, then record what it did."""
        act = self.queue.release if intent.action is HoldAction.RELEASE else self.queue.delete
        try:
            state, report = act(intent.queue_id)
        except QueueError as error:  # postsuper refused: nothing changed in Postfix
            self.holds.abandon(intent)
            raise HoldError(str(error)) from None
        if state is HoldState.GONE:
            sentence = f"Postfix no longer holds {intent.queue_id} ({report})"
        else:
            sentence = f"hold {intent.hold_id} {state} ({report})"
        if finishing:
            sentence += "; finished after an interruption"
        self._finish(intent, hold, state, sentence)
        return state, sentence

    def _finish(
        self, intent: HoldIntent, hold: HoldRecord, state: HoldState, sentence: str
    ) -> None:
        self.holds.finish(intent, state, sentence)
        if state is HoldState.RELEASED and self._released:
            self._released(hold)

    def held_message(self, hold: HoldRecord) -> QueuedMessage:
        """The message in Postfix's hold queue that ``hold`` is about, checked against the
        real queue: in the hold queue, from the hold's sender, to each of its recipients,
        begun within a session's length before the hold. A queue id that Postfix gave the
        hold must be that message's; without one (Postfix opens the queue file only after
        the first accepted recipient), the message of that envelope begun closest before
        the hold that no other hold is bound to. Raises :class:`HoldError` when there is
        none: nothing is handed to postsuper.
        """
        taken = set() if hold.queue_id else self.holds.queue_ids_taken(hold.hold_id)
        try:
            candidates = [
                message
                for message in self.queue.messages()
                if message.held
                and (message.queue_id == hold.queue_id if hold.queue_id else True)
                and message.queue_id not in taken
                and _same_envelope(hold, message)
            ]
        except QueueError as error:
            raise HoldError(f"cannot read Postfix's queue: {error}") from None
        if not candidates:
            where = f"queue id {hold.queue_id}" if hold.queue_id else "no queue id"
            raise HoldError(
                f"Postfix's hold queue has no message from {hold.sender or '<>'} to "
                f"{', '.join(hold.recipients)} for hold {hold.hold_id} ({where}); "
                "nothing was done"
            )
        held_at = hold.time.timestamp()
        return min(candidates, key=lambda message: abs(held_at - message.arrival))

    def finish_interrupted(self) -> list[Outcome]:
        """Finish the actions a crash left between the store and Postfix, against the real
        queue: a message still in the hold queue gets the action now; a release Postfix
        already did is recorded as released, a delete as deleted. An action another
        process (or thread) is carrying out right now is left to it. Raises
        :class:`HoldError` when Postfix's queue cannot be read (the intents then stay)."""
        done = []
        for intent in self.holds.intents():
            if not _interrupted(intent):
                continue
            hold = self.holds.get(intent.hold_id)
            try:
                message = self.queue.find(intent.queue_id)
            except QueueError as error:
                raise HoldError(f"cannot read Postfix's queue: {error}") from None
            if hold is None:  # the hold itself is gone: nothing to record against
                self.holds.abandon(intent)
                continue
            ours = message is not None and _same_envelope(hold, message)
            if ours and message is not None and message.held:
                state, sentence = self._carry_out(intent, hold, finishing=True)
            else:
                state, sentence = _after_the_fact(intent, message if ours else None)
                self._finish(intent, hold, state, sentence)
            log.warning("hold %s: %s", intent.hold_id, sentence)
            done.append(Outcome(intent.hold_id, state, sentence))
        return done


def _owner() -> str:
    """This process and thread, as an intent records who carries it out."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _interrupted(intent: HoldIntent) -> bool:
    """Whether nobody is carrying ``intent`` out any more: its process is gone (or its
    thread, in this process), or, for a process on another host, it is older than any
    action takes (postsuper is given 60 s)."""
    host, pid, thread = (intent.owner.rsplit(":", 2) + ["", ""])[:3]
    age = (datetime.now(UTC) - intent.time).total_seconds()
    if host != socket.gethostname() or not pid.isdigit():
        return age > _STALE_SECONDS
    if int(pid) == os.getpid():
        live = {t.ident for t in threading.enumerate()} - {threading.get_ident()}
        return not thread.isdigit() or int(thread) not in live
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return age > _STALE_SECONDS * 10  # alive: only a pid reused since


def _same_envelope(hold: HoldRecord, message: QueuedMessage) -> bool:
    """Whether ``message`` can be the one ``hold`` is about: the same sender, each held
    recipient among its recipients, and begun (MAIL FROM) within a session's length before
    the hold."""
    if not _spellings(hold.sender or "") & _spellings(message.sender):
        return False
    recipients = set().union(*map(_spellings, message.recipients))
    if not all(_spellings(address) & recipients for address in hold.recipients):
        return False
    held_at = hold.time.timestamp()
    return held_at - _SESSION_SECONDS <= message.arrival <= held_at + _CLOCK_SECONDS


# Cached: a release without a queue id compares its hold with every held message, so the
# hold's own addresses (and the queue's senders) are read again and again otherwise.
@lru_cache(maxsize=4096)
def _spellings(address: str) -> frozenset[str]:
    """``address`` as the queue spells it and as typogate names it (where it goes:
    unquoted, its domain mapped, the MTA's own hosts routed through), case folded. A hold
    names ``sue doe@army.ml`` for what ``postqueue -j`` lists as ``"sue doe"@army.ml``
    (or ``sue@ａｒｍｙ.ml``)."""
    found = {address.lower()}
    with suppress(InvalidAddress):
        reached = read_destination(address)
        found.update(d.address.lower() for d in (reached, *reached.alternatives))
    return frozenset(found)


def _after_the_fact(intent: HoldIntent, message: QueuedMessage | None) -> tuple[HoldState, str]:
    """The state of a hold whose intended action Postfix no longer needs to do: the message
    is elsewhere in the queue (released) or gone from it."""
    where = "gone from Postfix's queue" if message is None else f"in the {message.queue_name} queue"
    if intent.action is HoldAction.RELEASE:
        return HoldState.RELEASED, (
            f"hold {intent.hold_id} released: {intent.queue_id} is {where}; "
            "finished after an interruption"
        )
    if message is None:
        return HoldState.DELETED, (
            f"hold {intent.hold_id} deleted: {intent.queue_id} is {where}; "
            "finished after an interruption"
        )
    return HoldState.GONE, (
        f"Postfix no longer holds {intent.queue_id} (it is {where}, released by other means); "
        "not deleted"
    )
