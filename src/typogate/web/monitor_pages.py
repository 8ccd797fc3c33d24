"""The monitor's dashboard page and its REST API (``/api/monitor``): which look-alikes of
the protected domains exist and take mail, what a run found new, changed or gone, and the
rules an admin may add for the look-alikes that take mail.

Everything reads the monitor's snapshots in the store (``typogate monitor --db``): the web
part asks DNS nothing itself. A suggested rule is stored through the rules page's own
validation and storage (:func:`~typogate.web.api.save_rule`); the API adds it with the
ordinary ``POST /api/rules``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from typogate.domains import InvalidAddress, parse_domain
from typogate.policy.rules import RuleBook
from typogate.store.accounts import SignedIn
from typogate.store.lookalikes import SeenLookAlike, WatchedDomain
from typogate.vocabulary import Action, Change, MailState
from typogate.web.access import Admin, Context, Viewer
from typogate.web.api import RuleModel, save_rule
from typogate.web.context import WebContext
from typogate.web.pages import render

api = APIRouter(prefix="/api/monitor", tags=["monitor"])
pages = APIRouter(include_in_schema=False)
router = APIRouter()  # both, for the app: the API and the page
PAGE_DOMAINS = 25  # protected domains per page
LIST_SHOWN = 100  # changes, suggestions, covered look-alikes on the page (the API has all)
RUNS_SHOWN = 20
SUGGESTED_ACTIONS = (Action.REJECT, Action.HOLD)
TAKING_MAIL = tuple(state for state in MailState if state.accepts_mail)


class Facts(BaseModel):
    """What DNS said about a look-alike's mail at one observation."""

    state: MailState
    mx: list[str]
    spf: bool
    dmarc: bool


class CoveringRule(BaseModel):
    rule: str = Field(description="The rule that applies: suffix:ml or domain:army.ml.")
    action: Action


class MonitoredLookAlike(BaseModel):
    """A look-alike as the monitor last saw it (the JSON contract of ``typogate monitor
    --json``, and where it stands with the rules)."""

    domain: str = Field(description="The look-alike in Unicode form, as people read it.")
    ascii: str = Field(description="The same in A-label form, as DNS and rules take it.")
    intended: str
    probability: float
    rank: int
    state: MailState
    mx: list[str]
    spf: bool
    dmarc: bool
    probe: str | None = Field(description="The SMTP probe's answer, when it was probed.")
    change: Change = Field(description="Against its observation before the run that saw it.")
    run: int = Field(description="The run that saw it last.")
    before: Facts | None = Field(
        None, description="In changes: what it was before that run (null when new)."
    )
    covered_by: CoveringRule | None = Field(
        None, description="The rule that applies to it, if one does."
    )


class SuggestedRule(BaseModel):
    """A look-alike that takes mail and that no rule covers, with the rule that would."""

    look_alike: str
    ascii: str
    intended: str
    probability: float
    state: MailState
    mx: list[str]
    rule: RuleModel = Field(
        description="POST it to /api/rules as it is (action reject, or hold if you prefer)."
    )


class MonitorRunModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    started: datetime
    finished: datetime
    protected: int = Field(description="Protected domains in that run.")
    asked: int = Field(description="Look-alikes asked in DNS.")
    changes: int = Field(description="New, changed and gone look-alikes.")


class ProtectedDomain(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    intended: str
    run: int = Field(description="The newest run that kept one of its look-alikes.")
    seen: datetime = Field(description="When that run finished.")
    existing: int = Field(description="Its look-alikes that exist.")
    accepting: int = Field(description="Those of them that take mail (mx, a_only).")


class MonitorOverview(BaseModel):
    runs: list[MonitorRunModel] = Field(description=f"The newest {RUNS_SHOWN} runs first.")
    run: int | None = Field(description="The run whose changes are listed.")
    changes: list[MonitoredLookAlike] = Field(description="What that run found new, changed, gone.")
    protected: list[ProtectedDomain] = Field(
        description="Every protected domain watched, most look-alikes taking mail first."
    )
    look_alikes: list[MonitoredLookAlike] = Field(
        description="The latest state of each look-alike that exists, by protected domain and rank."
    )
    suggested_rules: list[SuggestedRule] = Field(description="The likeliest look-alike first.")


# --- what the page and the API read ---------------------------------------------------------


def rule_book(ctx: WebContext) -> RuleBook:
    """The rules in force: the configuration's, then the stored ones (as the Guard has them)."""
    return RuleBook(ctx.rules.in_force(ctx.config.rules))


def monitored(
    seen: SeenLookAlike, book: RuleBook, before: SeenLookAlike | None = None
) -> MonitoredLookAlike:
    """``seen`` with the rule that covers it, and ``before`` it (for a change)."""
    try:
        rule = book.match(parse_domain(seen.domain))
    except InvalidAddress:  # stored from DNS names the monitor made: not expected
        rule = None
    return MonitoredLookAlike(
        domain=seen.display,
        ascii=seen.domain,
        intended=seen.intended,
        probability=seen.probability,
        rank=seen.rank,
        state=MailState(seen.state),
        mx=list(seen.mx),
        spf=seen.spf,
        dmarc=seen.dmarc,
        probe=seen.probe,
        change=Change(seen.change),
        run=seen.run,
        before=(
            Facts(
                state=MailState(before.state),
                mx=list(before.mx),
                spf=before.spf,
                dmarc=before.dmarc,
            )
            if before is not None
            else None
        ),
        covered_by=CoveringRule(rule=rule.target, action=rule.action) if rule else None,
    )


def run_changes(
    ctx: WebContext, book: RuleBook, run: int, limit: int | None = None
) -> tuple[list[MonitoredLookAlike], int]:
    """What run ``run`` found new, changed or gone (the first ``limit`` by protected domain
    and rank), each with what it was before; and how many there are in all."""
    snapshots = ctx.store.look_alikes
    found = snapshots.changes(run)
    shown = found[:limit] if limit is not None else found
    before = snapshots.earlier([seen.domain for seen in shown], run)
    return [monitored(seen, book, before.get(seen.domain)) for seen in shown], len(found)


def taking_mail(
    ctx: WebContext, book: RuleBook, intended: list[str] | None = None
) -> tuple[list[SuggestedRule], list[MonitoredLookAlike]]:
    """The look-alikes that take mail by their latest state: those no rule covers, with
    the rule suggested for each (the likeliest first), and those a rule covers."""
    suggested, covered = [], []
    for seen in ctx.store.look_alikes.latest(intended, TAKING_MAIL).values():
        look_alike = monitored(seen, book)
        if look_alike.covered_by is not None:
            covered.append(look_alike)
        else:
            suggested.append(suggestion(look_alike))
    suggested.sort(key=lambda s: (-s.probability, s.ascii))
    return suggested, covered


def suggestion(look_alike: MonitoredLookAlike, action: Action = Action.REJECT) -> SuggestedRule:
    """The domain rule for a look-alike that takes mail. It names the A-label form: an IDN
    look-alike written in Unicode would read like the domain it imitates."""
    name = look_alike.domain
    if look_alike.ascii != name:
        name = f"{name} ({look_alike.ascii})"
    return SuggestedRule(
        look_alike=look_alike.domain,
        ascii=look_alike.ascii,
        intended=look_alike.intended,
        probability=look_alike.probability,
        state=look_alike.state,
        mx=look_alike.mx,
        rule=RuleModel(
            domain=look_alike.ascii,
            action=action,
            message=f"{name} is a look-alike of {look_alike.intended}.",
        ),
    )


def what_changed(look_alike: MonitoredLookAlike) -> str:
    """A change in words: what a look-alike was before, against what it is."""
    before = look_alike.before
    if before is None:
        return "first seen"
    if before.state is MailState.NXDOMAIN:
        return "existed before, went, and is back"
    if look_alike.change is Change.GONE:
        hosts = f" ({', '.join(before.mx)})" if before.mx else ""
        return f"was {before.state.value}{hosts}"
    said = []
    if before.state is not look_alike.state:
        said.append(f"{before.state.value} → {look_alike.state.value}")
    if before.mx and look_alike.mx and before.mx != look_alike.mx:  # else "Now" shows them
        said.append(f"hosts {' '.join(before.mx) or 'none'} → {' '.join(look_alike.mx) or 'none'}")
    for name, was, now in (
        ("SPF", before.spf, look_alike.spf),
        ("DMARC", before.dmarc, look_alike.dmarc),
    ):
        if was != now:
            said.append(f"{name} {'appeared' if now else 'removed'}")
    return "; ".join(said) or "unchanged"


def overview(ctx: WebContext, run: int | None, intended: list[str] | None) -> MonitorOverview:
    """What ``GET /api/monitor`` answers."""
    snapshots = ctx.store.look_alikes
    book = rule_book(ctx)
    runs = snapshots.runs(limit=RUNS_SHOWN)
    shown = run if run is not None else (runs[0].id if runs else None)
    wanted = _normal(intended) if intended else None
    suggested, _ = taking_mail(ctx, book, wanted)
    return MonitorOverview(
        runs=[MonitorRunModel.model_validate(r) for r in runs],
        run=shown,
        changes=run_changes(ctx, book, shown)[0] if shown is not None else [],
        protected=[ProtectedDomain.model_validate(w) for w in snapshots.watched()],
        look_alikes=[
            monitored(seen, book)
            for seen in snapshots.latest(wanted).values()
            if seen.state != MailState.NXDOMAIN
        ],
        suggested_rules=suggested,
    )


def _normal(names: list[str]) -> list[str]:
    """Protected domains as the store keeps them (Unicode form); a name that is not a
    domain matches nothing."""
    found = []
    for name in names:
        try:
            found.append(parse_domain(name.strip()).unicode)
        except InvalidAddress:
            continue
    return found


# --- the API ---------------------------------------------------------------------------------


@api.get("", response_model=MonitorOverview)
def monitor_overview(
    who: Viewer,
    ctx: Context,
    run: Annotated[
        int | None, Query(ge=1, description="Whose changes to list; default the newest run.")
    ] = None,
    intended: Annotated[
        list[str] | None,
        Query(description="Only these protected domains' look-alikes and suggestions."),
    ] = None,
) -> Any:
    """The monitor's latest findings: the runs, what a run found new, changed or gone, the
    latest state of each look-alike that exists, and a rule for each one that takes mail
    and no rule covers (add it with ``POST /api/rules``)."""
    return overview(ctx, run, intended)


# --- the page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProtectedSection:
    """One protected domain on the page: its look-alikes that exist, by rank, and those
    that went in its newest run."""

    watched: WatchedDomain
    look_alikes: list[MonitoredLookAlike]
    gone: list[MonitoredLookAlike]


@pages.get("/monitor")
def monitor_page(
    request: Request,
    who: Viewer,
    ctx: Context,
    run: int | None = None,
    intended: str = "",
    page: int = 1,
    added: str = "",
) -> HTMLResponse:
    return _page(request, who, ctx, run=run, intended=intended, page=page, added=added)


@pages.post("/monitor/rules")
def block_look_alike(
    request: Request,
    who: Admin,
    ctx: Context,
    domain: Annotated[str, Form(max_length=255)],
    action: Annotated[str, Form(max_length=16)] = Action.REJECT.value,
) -> Response:
    """Add the suggested rule for a look-alike that takes mail (reject or hold)."""
    if action not in SUGGESTED_ACTIONS:
        problem = f"a suggested rule rejects or holds, not {action!r}"
        return _page(request, who, ctx, error=problem, status=422)
    book = rule_book(ctx)
    wanted = domain.strip().lower()
    suggested, covered = taking_mail(ctx, book)
    chosen = next((s for s in suggested if s.ascii == wanted), None)
    if chosen is None:
        rule = next((c.covered_by for c in covered if c.ascii == wanted), None)
        if rule is not None:
            problem = f"{wanted} is covered already: {rule.rule} → {rule.action.value}"
            return _page(request, who, ctx, error=problem, status=409)
        problem = f"{wanted} is not a look-alike the monitor last saw taking mail"
        return _page(request, who, ctx, error=problem, status=422)
    body = chosen.rule.model_copy(update={"action": Action(action)})
    try:
        save_rule(ctx, body, who.username, None)
    except HTTPException as refused:
        return _page(request, who, ctx, error=str(refused.detail), status=refused.status_code)
    return RedirectResponse(f"/monitor?added={quote(wanted)}#suggested", status_code=303)


def _page(
    request: Request,
    who: SignedIn,
    ctx: WebContext,
    *,
    run: int | None = None,
    intended: str = "",
    page: int = 1,
    added: str = "",
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    snapshots = ctx.store.look_alikes
    book = rule_book(ctx)
    runs = snapshots.runs(limit=RUNS_SHOWN)
    shown = run if run is not None else (runs[0].id if runs else None)
    changes, changes_total = (
        run_changes(ctx, book, shown, LIST_SHOWN) if shown is not None else ([], 0)
    )
    watched = snapshots.watched()
    suggested, covered = taking_mail(ctx, book)
    names = set(_normal([intended])) if intended.strip() else None
    if names is not None:
        watched_shown = [w for w in watched if w.intended in names]
        suggested = [s for s in suggested if s.intended in names]
        covered = [c for c in covered if c.intended in names]
    else:
        watched_shown = watched
    pages_count = max(1, math.ceil(len(watched_shown) / PAGE_DOMAINS))
    page = min(max(page, 1), pages_count)
    on_page = watched_shown[(page - 1) * PAGE_DOMAINS : page * PAGE_DOMAINS]
    by_intended: dict[str, list[MonitoredLookAlike]] = defaultdict(list)
    for seen in snapshots.latest([w.intended for w in on_page]).values():
        by_intended[seen.intended].append(monitored(seen, book))
    sections = [
        ProtectedSection(
            domain,
            [m for m in by_intended[domain.intended] if m.state is not MailState.NXDOMAIN],
            [
                m
                for m in by_intended[domain.intended]
                if m.state is MailState.NXDOMAIN and m.run == domain.run
            ],
        )
        for domain in on_page
    ]
    return render(
        request,
        "monitor.html",
        who,
        status,
        runs=runs,
        shown=shown,
        shown_record=next((r for r in runs if r.id == shown), None),
        changes=changes,
        changes_total=changes_total,
        changed_words={c.ascii: what_changed(c) for c in changes},
        watched=watched,
        suggested_total=len(suggested),
        suggested=suggested[:LIST_SHOWN],
        covered_total=len(covered),
        covered=covered[:LIST_SHOWN],
        sections=sections,
        intended=intended,
        page=page,
        pages_count=pages_count,
        outcome=_added_rule(ctx, added),
        error=error,
        actions=SUGGESTED_ACTIONS,
    )


def _added_rule(ctx: WebContext, added: str) -> Any:
    """The stored rule for the look-alike just blocked: read from the store, never from the
    URL's text."""
    if not added:
        return None
    return next(
        (stored for stored in reversed(ctx.rules.all()) if stored.rule.domain == added), None
    )


router.include_router(api)
router.include_router(pages)
