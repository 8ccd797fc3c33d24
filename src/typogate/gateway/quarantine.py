"""Hold and release: what a person does with a held message.

Held messages sit in Postfix's hold queue (a policy-service HOLD or a milter quarantine);
typogate's record says which queue id. An admin releases (``postsuper -H``) or deletes
(``postsuper -d``, only with confirmation); a sender releases their own message with a
signed, expiring, one-use link. Every action lands in the audit trail. Releasing twice is
harmless: the second release reports the first and changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from typogate.errors import TypogateError
from typogate.gateway.logfmt import logfmt
from typogate.gateway.postfix_queue import PostfixQueue, QueueError
from typogate.store.holds import Holds
from typogate.store.records import HoldRecord, TrailEntry
from typogate.vocabulary import HoldAction, HoldState

log = logging.getLogger(__name__)

_SALT = "typogate-release-link"
MIN_SECRET = 16


class HoldError(TypogateError, ValueError):
    """A hold action that cannot be done; the message says why."""


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
        if not self.holds.spend_link(nonce, hold_id):
            raise InvalidReleaseLink("this release link was already used")
        return self.release(hold_id, "sender (release link)", "released by the sender's link")

    def trail(self, hold_id: str | None = None) -> list[TrailEntry]:
        """The audit trail, oldest first."""
        return self.holds.trail(hold_id)

    def _act(self, hold_id: str, action: HoldAction, actor: str, why: str) -> Outcome:
        """Carry out ``action`` and log it, done or refused, in one line (docs/operations.md)."""
        try:
            outcome = self._carry_out(hold_id, action, actor, why)
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

    def _carry_out(self, hold_id: str, action: HoldAction, actor: str, why: str) -> Outcome:
        def carry_out(hold: HoldRecord) -> tuple[HoldState, str]:
            if not hold.queue_id:
                raise HoldError(
                    f"hold {hold_id} has no Postfix queue id: find it with postqueue -p"
                )
            act = self.queue.release if action is HoldAction.RELEASE else self.queue.delete
            try:
                state, report = act(hold.queue_id)
            except QueueError as error:
                raise HoldError(str(error)) from None
            if state is HoldState.GONE:
                return state, f"Postfix no longer holds {hold.queue_id} ({report})"
            return state, f"hold {hold_id} {state} ({report})"

        done = self.holds.act(hold_id, action, actor, why, carry_out)
        if done is None:
            raise UnknownHold(f"no hold {hold_id}")
        before, state, sentence = done
        if state is HoldState.RELEASED and before.state is HoldState.HELD and self._released:
            self._released(before)
        return Outcome(hold_id, state, sentence)
