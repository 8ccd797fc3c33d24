"""The sender's own pages, reached from the links in typogate's notices (no account: the
signed link is the permission): the release of a held message, and the confirmation of an
address a warning questioned. They speak to the person who wrote the message: which message
(its subject, when it was written, every recipient, the one that looks mistyped), what they
can do, and once it is done, what happened, when and by whom, never typogate's or Postfix's
internals (hold ids, queue ids, postsuper's words).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from itsdangerous import BadSignature, SignatureExpired

from typogate.errors import HoldError
from typogate.gateway.confirmation import InvalidConfirmLink
from typogate.gateway.quarantine import InvalidReleaseLink, link_signer
from typogate.store.records import HoldRecord, TrailEntry
from typogate.vocabulary import HoldAction, HoldState
from typogate.web.access import Context, check_form_token
from typogate.web.context import WebContext
from typogate.web.held_message import described
from typogate.web.pages import render, render_anonymous

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
# How gateway.quarantine names a release by the sender's link in the audit trail.
_BY_LINK = "sender (release link)"


@dataclass(frozen=True, slots=True)
class Happened:
    """What became of a held message, in the sender's words."""

    state: HoldState
    when: datetime | None
    by_sender: bool  # False: the mail administrator (or Postfix, for a message gone)


def _link(ctx: WebContext, token: str) -> tuple[HoldRecord, bool]:
    """The hold a release link is for, and whether the link was used already. Raises
    :class:`InvalidReleaseLink` for a link that was tampered with or has expired."""
    secret = ctx.runtime.release_secret
    if secret is None:
        raise InvalidReleaseLink("release links are not in use here")
    try:
        data = link_signer(secret).loads(token, max_age=ctx.link_seconds)
    except SignatureExpired:
        raise InvalidReleaseLink("this release link has expired") from None
    except BadSignature:
        raise InvalidReleaseLink("this release link is not valid") from None
    hold = ctx.store.holds.get(str(data["hold"]))
    if hold is None:
        raise InvalidReleaseLink("this release link names no held message")
    return hold, ctx.store.holds.link_spent(str(data["nonce"]))


def _happened(trail: list[TrailEntry], hold: HoldRecord) -> Happened:
    """When and by whom the message left the hold: the action that changed its state (a
    second release after the first is in the trail too, and changed nothing)."""
    wanted = {HoldState.RELEASED: HoldAction.RELEASE, HoldState.DELETED: HoldAction.DELETE}
    for entry in trail:
        if hold.state is HoldState.GONE or entry.action is wanted.get(hold.state):
            return Happened(hold.state, entry.time, entry.actor == _BY_LINK)
    return Happened(hold.state, None, False)


def _page(
    request: Request,
    ctx: WebContext,
    hold: HoldRecord,
    token: str,
    *,
    spent: bool = False,
    status: int = 200,
    problem: str = "",
) -> HTMLResponse:
    hold = described(ctx.quarantine, hold)
    if hold.state is HoldState.HELD and spent and not problem:
        # The link was used, but the release did not go through (Postfix refused it).
        problem = (
            "This link was used, but the message is still held: "
            "your mail administrator can send it."
        )
    values = {
        "hold": hold,
        "token": token,
        "recipients": hold.all_recipients or hold.recipients,
        "typos": dict(zip(hold.recipients, hold.suggestions, strict=False)),
        "reasons": dict(zip(hold.recipients, hold.reasons, strict=False)),
        "error": None,
        "problem": problem,
    }
    if hold.state is HoldState.HELD and not problem:
        return render_anonymous(request, ctx, "release.html", status, **values)
    if hold.state is HoldState.HELD:
        return render(request, "release.html", None, status, **values)
    happened = _happened(ctx.store.holds.trail(hold.hold_id), hold)
    return render(request, "release.html", None, status, happened=happened, **values)


@router.get("/release/{token}")
def release_link_page(request: Request, token: str, ctx: Context) -> HTMLResponse:
    """What the link is for; opening it changes nothing (mail scanners open links)."""
    try:
        hold, spent = _link(ctx, token)
    except InvalidReleaseLink as error:
        return render(request, "release.html", None, 403, hold=None, error=str(error))
    return _page(request, ctx, hold, token, spent=spent)


@router.post("/release/{token}", dependencies=[Depends(check_form_token)])
def release_by_link(request: Request, token: str, ctx: Context) -> HTMLResponse:
    """Send the message on, once; a used link shows what happened instead."""
    try:
        hold, spent = _link(ctx, token)
    except InvalidReleaseLink as error:
        return render(request, "release.html", None, 403, hold=None, error=str(error))
    if spent or hold.state is not HoldState.HELD:
        return _page(request, ctx, hold, token, spent=spent)
    try:
        ctx.quarantine.release_by_link(token, ctx.link_seconds)
    except InvalidReleaseLink:  # used at the same moment in another tab: say what happened
        pass
    except HoldError as error:  # Postfix refused, or no queue id: the admin's matter
        log.warning("release by the sender's link failed for hold %s: %s", hold.hold_id, error)
        problem = "It could not be sent on just now. Your mail administrator can send it."
        return _page(request, ctx, hold, token, status=409, problem=problem)
    return _page(request, ctx, ctx.store.holds.get(hold.hold_id) or hold, token, spent=True)


@router.get("/confirm/{token}")
def confirm_link_page(request: Request, token: str, ctx: Context) -> HTMLResponse:
    """Which addresses a warning questioned, and the button that says they are right;
    opening it changes nothing (mail scanners open links)."""
    try:
        warning, confirmed = ctx.runtime.confirmations.read(token, ctx.link_seconds)
    except InvalidConfirmLink as error:
        return render(request, "confirm.html", None, 403, warning=None, error=str(error))
    if confirmed:
        return render(request, "confirm.html", None, warning=warning, confirmed=True)
    return render_anonymous(request, ctx, "confirm.html", warning=warning, token=token)


@router.post("/confirm/{token}", dependencies=[Depends(check_form_token)])
def confirm_by_link(request: Request, token: str, ctx: Context) -> HTMLResponse:
    """The sender meant those addresses: typogate stops questioning its mail to them."""
    try:
        warning, _ = ctx.runtime.confirmations.confirm(token, ctx.link_seconds)
    except InvalidConfirmLink as error:
        return render(request, "confirm.html", None, 403, warning=None, error=str(error))
    return render(request, "confirm.html", None, warning=warning, confirmed=True)
