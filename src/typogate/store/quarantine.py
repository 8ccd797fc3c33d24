"""Hold and release: what a person does with a held message.

Held messages sit in Postfix's hold queue (a policy-service HOLD or a milter quarantine);
typogate's record says which queue id. An admin releases (``postsuper -H``) or deletes
(``postsuper -d``, only with confirmation); a sender releases their own message with a
signed, expiring, one-use link. Every action lands in the audit trail. Releasing twice is
harmless: the second release reports the first and changes nothing.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from typogate.store.database import Store
from typogate.store.models import HoldActionRow, HoldRow, SpentLinkRow

_SALT = "typogate-release-link"


class HoldError(ValueError):
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
    state: str
    message: str


def link_signer(secret: str) -> URLSafeTimedSerializer:
    """What signs and checks release links (the secret of ``release.secret``)."""
    return URLSafeTimedSerializer(secret, salt=_SALT)


def release_secret(store: Store, configured: str) -> str:
    """The key that signs release links: ``release.secret`` when the configuration sets one,
    else a random key typogate made once and keeps in the store (links work out of the box,
    and survive restarts)."""
    return configured or store.secret("release-links")


def release_link(signer: URLSafeTimedSerializer, hold_id: str, base_url: str) -> str:
    """A signed link that lets the sender release ``hold_id`` once, until it expires."""
    token = signer.dumps({"hold": hold_id, "nonce": uuid.uuid4().hex})
    return f"{base_url.rstrip('/')}/release/{token}"


class Quarantine:
    """Release and delete held messages recorded in ``store``.

    ``postfix_config`` is the Postfix configuration directory for ``postsuper -c`` (None:
    the system's default instance). ``secret`` signs release links.
    """

    def __init__(
        self, store: Store, secret: str | None = None, postfix_config: str | None = None
    ) -> None:
        if secret is not None and len(secret) < 16:
            raise HoldError("the release-link secret must be at least 16 characters")
        self.store = store
        self.postfix_config = postfix_config
        self._links = link_signer(secret) if secret else None

    def _signer(self) -> URLSafeTimedSerializer:
        if self._links is None:
            raise HoldError("release links need release.secret in the configuration")
        return self._links

    def release(self, hold_id: str, actor: str, why: str) -> Outcome:
        """Release a held message to its recipients. Harmless when already released."""
        return self._act(hold_id, "release", actor, why, "-H", "released")

    def delete(self, hold_id: str, actor: str, why: str, *, confirm: bool = False) -> Outcome:
        """Delete a held message for good; refuses without ``confirm=True``."""
        if not confirm:
            raise ConfirmationRequired(f"deleting hold {hold_id} needs confirmation")
        return self._act(hold_id, "delete", actor, why, "-d", "deleted")

    def release_link(self, hold_id: str, base_url: str) -> str:
        """A signed link that lets the sender release this hold once."""
        return release_link(self._signer(), hold_id, base_url)

    def read_link(self, token: str, max_age: int) -> dict[str, Any]:
        """The hold a release link is for, without using the link; raises
        :class:`InvalidReleaseLink` if it is tampered, older than ``max_age`` s, or used."""
        hold_id, nonce = self._open_link(token, max_age)
        with Session(self.store.engine) as session:
            if session.get(SpentLinkRow, nonce) is not None:
                raise InvalidReleaseLink("this release link was already used")
        hold = self.store.held(hold_id)
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
        try:
            with Session(self.store.engine) as session, session.begin():
                session.add(SpentLinkRow(nonce=nonce, hold_id=hold_id, time=datetime.now(UTC)))
        except IntegrityError:
            raise InvalidReleaseLink("this release link was already used") from None
        return self.release(hold_id, "sender (release link)", "released by the sender's link")

    def trail(self, hold_id: str | None = None) -> list[dict[str, object]]:
        """The audit trail, oldest first."""
        query = select(HoldActionRow).order_by(HoldActionRow.id)
        if hold_id is not None:
            query = query.where(HoldActionRow.hold_id == hold_id)
        with Session(self.store.engine) as session:
            return [
                {
                    "hold_id": r.hold_id,
                    "action": r.action,
                    "actor": r.actor,
                    "why": r.why,
                    "outcome": r.outcome,
                    "time": r.time.isoformat(),
                }
                for r in session.scalars(query)
            ]

    def _act(
        self, hold_id: str, action: str, actor: str, why: str, flag: str, done: str
    ) -> Outcome:
        with Session(self.store.engine) as session, session.begin():
            hold = session.get(HoldRow, hold_id, with_for_update=True)
            if hold is None:
                raise UnknownHold(f"no hold {hold_id}")
            if hold.state != "held":
                outcome = Outcome(hold_id, hold.state, f"hold {hold_id} was already {hold.state}")
            elif not hold.queue_id:
                raise HoldError(
                    f"hold {hold_id} has no Postfix queue id: find it with postqueue -p"
                )
            else:
                outcome = self._postsuper(hold, flag, done)
            session.add(
                HoldActionRow(
                    hold_id=hold_id,
                    action=action,
                    actor=actor,
                    why=why,
                    outcome=outcome.message,
                    time=datetime.now(UTC),
                )
            )
            return outcome

    def _postsuper(self, hold: HoldRow, flag: str, done: str) -> Outcome:
        command = ["postsuper"]
        if self.postfix_config:
            command += ["-c", self.postfix_config]
        result = subprocess.run(
            [*command, flag, str(hold.queue_id)], capture_output=True, text=True, timeout=60
        )
        report = (result.stderr or result.stdout).strip()
        if result.returncode != 0:
            raise HoldError(f"postsuper {flag} {hold.queue_id} failed: {report}")
        if (
            "Requeued" in report
            or "Released" in report
            or "Deleted" in report
            or "released" in report
        ):
            hold.state = done
            return Outcome(hold.hold_id, done, f"hold {hold.hold_id} {done} ({report})")
        # Postfix no longer has it (delivered, expired or deleted by hand): nothing to do.
        hold.state = "gone"
        return Outcome(
            hold.hold_id,
            "gone",
            f"Postfix no longer holds {hold.queue_id} ({report or 'not found'})",
        )
