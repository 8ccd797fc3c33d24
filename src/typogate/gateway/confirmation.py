"""A warned sender's answer: "that address is right".

A warning lets the message through. Its notice (``gateway.warn_notices``) carries a signed
link with which the sender confirms the addresses it questioned; so does the notice of a
milter's removal, where the sender then sends the message again. A confirmation is a
sender's release without a hold (Mimecast's misaddressed-mail protection learns the same
way): evidence, counted like a release, that this sender meant those domains, so typogate
stops questioning its mail to them. Nobody else's: the organisation learns a slip of a
correspondent only once several of ours vouch for it (``learning.proven_senders``), and a
look-alike of a protected domain that anyone can register never from a sender's word (the
sender's own mail there is lifted only from a warning, which let it through anyway, never
from a rejection). So a notice offers the link only where a release lifts the alert
(:meth:`typogate.Guard.lifted_by_release`), and only to a sender typogate believes.

The link names the sender and the questioned addresses (signed, so neither can be changed),
works once, for ``release.link_hours``; opening it changes nothing (mail scanners open
links), confirming takes a click.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from typogate.errors import TypogateError
from typogate.gateway.logfmt import logfmt
from typogate.policy import Verdict
from typogate.store.holds import Holds

log = logging.getLogger(__name__)

_SALT = "typogate-confirm-link"  # a release link's token is no confirm link's, and back


class InvalidConfirmLink(TypogateError, ValueError):
    """A confirm link that was tampered with or has expired."""


@dataclass(frozen=True, slots=True)
class Questioned:
    """An address a warning questioned, and what typogate thought was meant."""

    recipient: str
    domain: str
    suggestion: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Warning:
    """What a confirm link is for: the sender, the addresses its warning questioned, when
    the notice was written, and whether the message went to them (``delivered``: a warning)
    or not (a milter removed them: the sender must send it again)."""

    sender: str
    questioned: tuple[Questioned, ...]
    nonce: str
    warned: datetime
    delivered: bool = True

    @property
    def domains(self) -> list[str]:
        """The questioned domains, each once, in the warning's order."""
        return list(dict.fromkeys(q.domain for q in self.questioned))


def confirm_signer(secret: str) -> URLSafeTimedSerializer:
    """What signs and checks confirm links (the secret of release links, another salt)."""
    return URLSafeTimedSerializer(secret, salt=_SALT)


def confirm_link(
    signer: URLSafeTimedSerializer,
    sender: str,
    verdicts: Sequence[Verdict],
    base_url: str,
    *,
    delivered: bool = True,
) -> str:
    """A signed link with which ``sender`` confirms, once, the recipients of ``verdicts``
    (``delivered``: the message went to them; else they were removed from it)."""
    token = signer.dumps(
        {
            "sender": sender,
            "questioned": [[v.recipient, v.domain, v.suggestion, v.reason] for v in verdicts],
            "nonce": uuid.uuid4().hex,
            "delivered": delivered,
        }
    )
    return f"{base_url.rstrip('/')}/confirm/{token}"


class Confirmations:
    """Confirm links read and used: each used link is recorded in the store (as release
    links are, so each works once in every process on it), then ``meant`` is told that the
    sender meant the questioned recipients."""

    def __init__(
        self,
        holds: Holds,
        secret: str | None,
        meant: Callable[[str, Sequence[str]], None],
    ) -> None:
        self._holds = holds
        self._signer = confirm_signer(secret) if secret else None
        self._meant = meant

    def read(self, token: str, max_age: int) -> tuple[Warning, bool]:
        """The warning a link is for, and whether the link was used already. Raises
        :class:`InvalidConfirmLink` for a link tampered with, or older than ``max_age`` s."""
        if self._signer is None:
            raise InvalidConfirmLink("confirm links are not in use here")
        try:
            data, signed = self._signer.loads(token, max_age=max_age, return_timestamp=True)
            warning = Warning(
                str(data["sender"]),
                tuple(
                    Questioned(str(recipient), str(domain), _text(suggestion), str(reason))
                    for recipient, domain, suggestion, reason in data["questioned"]
                ),
                str(data["nonce"]),
                signed.astimezone(UTC),
                data.get("delivered", True) is not False,  # links sent before it was said
            )
        except SignatureExpired:
            raise InvalidConfirmLink("this link has expired") from None
        except (BadSignature, KeyError, TypeError, ValueError):
            raise InvalidConfirmLink("this link is not valid") from None
        return warning, self._holds.link_spent(warning.nonce)

    def confirm(self, token: str, max_age: int) -> tuple[Warning, bool]:
        """Use a link: the sender meant the questioned recipients. Returns the warning and
        whether this use counted (False: the link was used before, and nothing changed)."""
        warning, _ = self.read(token, max_age)
        # No hold: the spent link names none. Recorded before the evidence is, so two
        # clicks at once (two tabs, two processes) count once.
        recipients = [q.recipient for q in warning.questioned]
        if not self._holds.spend_link(warning.nonce, "", warning.sender, recipients):
            return warning, False
        try:
            self._meant(warning.sender, recipients)
        except Exception:
            # Nothing was learned (the store failed between the two writes): the link
            # works again once the store does, unless the store cannot even take this back.
            with suppress(Exception):
                self._holds.unspend_link(warning.nonce)
            raise
        log.info(logfmt(event="confirm", sender=warning.sender, domains=warning.domains))
        return warning, True


def _text(value: object) -> str | None:
    return None if value is None else str(value)
