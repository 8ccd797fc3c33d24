"""The dashboard's pages: server-rendered HTML with plain forms, so every action works
without JavaScript (the chart is the one script)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from typogate.config import Rule, rule_problem
from typogate.domains import ascii_form, printable_form, written_form
from typogate.errors import HoldError
from typogate.store.accounts import SignedIn
from typogate.vocabulary import Action, HoldState
from typogate.web.access import (
    Admin,
    Context,
    SignInRefused,
    Viewer,
    Writer,
    check_form_token,
    form_token,
    keep_form_token,
    sign_in,
    sign_out,
)
from typogate.web.api import (
    RowId,
    RuleModel,
    dashboard_stats,
    save_rule,
    still_refused,
)
from typogate.web.context import WebContext

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


def shown_time(moment: datetime | None) -> Markup:
    """One way to show a time on every page: UTC, to the minute, saying so; the exact
    instant in the ``<time>`` element's ``datetime`` (and its tooltip)."""
    if moment is None:
        return Markup("")
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    exact = moment.isoformat(timespec="seconds")
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(
        exact, moment.strftime(TIME_FORMAT)
    )


def with_ascii(name: str | None) -> Markup:
    """One way to show a domain or an address on every page: an address as its sender
    writes it (``"bob<carol"@example.org``, however the adapter was handed it), with its
    A-label form beneath when it is not ASCII, so a look-alike shows for what it is
    (``аrmy.mil``, a Cyrillic ``а``, over ``xn--rmy-5cd.mil``), where "аrmy.mil looks like
    a typo of army.mil" reads the same letters twice; a character that would not show as
    itself (a direction override, an invisible space) written as its escape."""
    if not name:
        return Markup("")
    if "@" in name:
        name = written_form(name)
    written = ascii_form(name)
    if written == name:
        return escape(printable_form(name))
    return Markup('{} <span class="ascii">{}</span>').format(
        printable_form(name), printable_form(written)
    )


templates.env.filters["when"] = shown_time
templates.env.filters["with_ascii"] = with_ascii
templates.env.filters["printable"] = printable_form  # free text a stranger wrote
HOLD_STATES = tuple(HoldState)
ACTIONS = tuple(Action)
EVENTS_PAGE = 50
PAIRS_PAGE = 100  # the (sender, domain) pairs a review page lists, most caught first
SAID_PAGE = 20  # and the latest of what senders said with their links, under them


def render(
    request: Request, name: str, who: SignedIn | None, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page from ``templates/``; ``who`` (with the CSRF token forms put in a hidden
    field) goes to every template."""
    return templates.TemplateResponse(request, name, {"who": who, **values}, status_code=status)


def render_anonymous(
    request: Request, ctx: WebContext, name: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page with a form for people not signed in, protected by the form cookie."""
    token = form_token(request)
    response = render(request, name, None, status, form_token=token, **values)
    keep_form_token(response, token, ctx.config.web.secure_cookies)
    return response


def _local(target: str) -> str:
    """Only paths on this site: ``next=//evil.example`` must not redirect away."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- signing in and out --------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, ctx: Context, next: str = "/") -> HTMLResponse:
    return render_anonymous(request, ctx, "login.html", next=_local(next), error=None)


@router.post("/login", dependencies=[Depends(check_form_token)])
def login(
    request: Request,
    ctx: Context,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    response = _see(_local(next))
    try:
        sign_in(request, ctx, username, password, response)
    except SignInRefused as refused:
        page = {"next": _local(next), "error": str(refused)}
        shown = render_anonymous(request, ctx, "login.html", refused.status, **page)
        shown.headers.update(refused.headers)
        return shown
    return response


@router.post("/logout")
def logout(request: Request, who: Writer, ctx: Context) -> Response:
    response = _see("/login")
    sign_out(request, ctx, response)
    return response


# --- what happened ---------------------------------------------------------------------------


@router.get("/")
def dashboard(request: Request, who: Viewer, ctx: Context, days: int = 30) -> HTMLResponse:
    days = min(max(days, 1), 366)
    stats = dashboard_stats(ctx, days)
    return render(
        request,
        "dashboard.html",
        who,
        warning=getattr(request.app.state, "release_link_warning", None),
        stats=stats,
        chart=[d.model_dump() for d in stats.by_day],
        held=ctx.store.holds.in_state(HoldState.HELD, limit=20),
    )


@router.get("/pairs")
def pairs(request: Request, who: Viewer, ctx: Context, days: int = 30) -> HTMLResponse:
    days = min(max(days, 1), 366)
    return render(
        request,
        "pairs.html",
        who,
        days=days,
        pairs=ctx.history.top_pairs(days, PAIRS_PAGE),
        said=ctx.store.holds.said(SAID_PAGE),
        refused=still_refused(ctx, PAIRS_PAGE),
    )


@router.get("/events")
def events(
    request: Request,
    who: Viewer,
    ctx: Context,
    before: int | None = None,
    action: str = "",
    domain: str = "",
) -> HTMLResponse:
    rows = ctx.history.events(
        before=before,
        limit=EVENTS_PAGE,
        action=Action(action) if action in ACTIONS else None,
        domain=domain.strip().lower() or None,
    )
    return render(
        request,
        "events.html",
        who,
        events=rows,
        action=action,
        domain=domain,
        actions=ACTIONS,
        next_before=rows[-1].id if len(rows) == EVENTS_PAGE else None,
    )


@router.get("/correspondents")
def correspondents(request: Request, who: Viewer, ctx: Context, sender: str = "*") -> HTMLResponse:
    rows = ctx.history.correspondents(sender.strip() or "*", 200)
    return render(request, "correspondents.html", who, rows=rows, sender=sender)


# --- hold and release ------------------------------------------------------------------------


@router.get("/holds")
def holds(
    request: Request, who: Viewer, ctx: Context, state: str = HoldState.HELD, done: str = ""
) -> HTMLResponse:
    return _holds_page(request, who, ctx, state, done=done)


def _holds_page(
    request: Request,
    who: SignedIn,
    ctx: WebContext,
    state: str,
    *,
    done: str = "",
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    held_state = HoldState(state) if state in HOLD_STATES else HoldState.HELD
    # The outcome shown comes from the audit trail, never from the URL's text.
    trail = ctx.quarantine.trail(done)[-1:] if done else []
    return render(
        request,
        "holds.html",
        who,
        status,
        holds=ctx.store.holds.in_state(held_state),
        state=held_state,
        states=HOLD_STATES,
        outcome=trail[0] if trail else None,
        error=error,
    )


@router.post("/holds/{hold_id}/release")
def release(
    request: Request,
    hold_id: str,
    who: Admin,
    ctx: Context,
    why: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        ctx.quarantine.release(hold_id, who.username, why or "released in the dashboard")
    except HoldError as error:
        return _holds_page(request, who, ctx, HoldState.HELD, error=str(error), status=409)
    return _see(f"/holds?done={hold_id}")


@router.post("/holds/{hold_id}/delete")
def delete(
    request: Request,
    hold_id: str,
    who: Admin,
    ctx: Context,
    why: Annotated[str, Form(max_length=1000)] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    try:
        ctx.quarantine.delete(
            hold_id, who.username, why or "deleted in the dashboard", confirm=confirm == "yes"
        )
    except HoldError as error:
        return _holds_page(request, who, ctx, HoldState.HELD, error=str(error), status=409)
    return _see(f"/holds?done={hold_id}")


# --- rules -----------------------------------------------------------------------------------


@router.get("/rules")
def rules(
    request: Request,
    who: Viewer,
    ctx: Context,
    domain: Annotated[str, Query(max_length=300)] = "",
    action: Annotated[str, Query(max_length=16)] = Action.ALLOW.value,
    sender: Annotated[str, Query(max_length=1024)] = "",
) -> HTMLResponse:
    """The rules. ``domain`` names a domain to offer a rule for: an allow rule, for
    ``sender`` alone when given (the dashboard links each suspected typo domain here; the
    events page each alert, and /pairs each pair, with its sender), or a stricter one for
    every sender (/pairs, beside what a sender said there). The new rule's form is filled
    in, and nothing is stored until an admin adds it."""
    return _rules_page(request, who, ctx, proposed=_proposed_rule(domain, action, sender))


def _proposed_rule(domain: str, action: str, sender: str) -> Rule | None:
    if not domain.strip() or action not in ACTIONS:
        return None
    senders = [sender] if sender.strip() else []
    try:
        return Rule(domain=domain, action=Action(action), senders=senders)
    except ValidationError:
        return None  # no domain or sender a rule can name: the form is left empty


def _rules_page(
    request: Request,
    who: SignedIn,
    ctx: WebContext,
    error: str | None = None,
    status: int = 200,
    proposed: Rule | None = None,
) -> HTMLResponse:
    return render(
        request,
        "rules.html",
        who,
        status,
        configured=ctx.config.rules,
        stored=ctx.rules.all(),
        actions=ACTIONS,
        error=error,
        proposed=proposed,
    )


def _rule_form(
    kind: str, target: str, action: str, exceptions: str, message: str, senders: str
) -> RuleModel:
    """The rule a form describes; ValueError naming the field when a choice is missing (the
    rule itself is checked by :func:`save_rule`, as for the API)."""
    if kind not in ("suffix", "domain"):
        raise ValueError("kind: choose whether the rule is for a suffix or for one domain")
    if action not in ACTIONS:
        raise ValueError("action: choose what the rule does (allow, warn, hold or reject)")
    target = target.strip()
    return RuleModel.model_validate(
        {
            "suffix": target if kind == "suffix" else None,
            "domain": target if kind == "domain" else None,
            "action": action,
            "exceptions": exceptions.replace(",", " ").split(),
            "message": message.strip() or None,
            "senders": senders.replace(",", " ").split(),
        }
    )


@router.post("/rules")
def add_rule(
    request: Request,
    who: Admin,
    ctx: Context,
    target: Annotated[str, Form(max_length=255)],
    kind: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    exceptions: Annotated[str, Form(max_length=4000)] = "",
    message: Annotated[str, Form(max_length=1000)] = "",
    senders: Annotated[str, Form(max_length=4000)] = "",
    rule_id: Annotated[RowId | None, Form()] = None,
) -> Response:
    """Add a rule, or change rule ``rule_id``."""
    try:
        body = _rule_form(kind, target, action, exceptions, message, senders)
        save_rule(ctx, body, who.username, rule_id)
    except (HTTPException, ValueError) as error:
        reason = error.detail if isinstance(error, HTTPException) else rule_problem(error)
        return _rules_page(request, who, ctx, error=str(reason), status=422)
    return _see("/rules")


@router.post("/rules/{rule_id}/delete")
def remove_rule(rule_id: RowId, who: Admin, ctx: Context) -> Response:
    if ctx.rules.remove(rule_id):
        ctx.apply_rules()
    return _see("/rules")
