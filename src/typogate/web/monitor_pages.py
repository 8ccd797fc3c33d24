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
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from typogate.domains import InvalidAddress, parse_domain
from typogate.policy.rules import RuleBook, rule_books
from typogate.store.accounts import SignedIn
from typogate.store.records import SeenLookAlike, WatchedDomain
from typogate.vocabulary import Action, Change, MailState, Probe
from typogate.web.access import Admin, Context, Viewer
from typogate.web.api import RuleModel, save_rule
from typogate.web.context import WebContext
from typogate.web.pages import render

api = APIRouter(prefix="/api/monitor", tags=["monitor"])
pages = APIRouter(include_in_schema=False)
PAGE_DOMAINS = 25  # protected domains per page
LIST_SHOWN = 100  # changes, suggestions, covered look-alikes on the page (the API has all)
RUNS_SHOWN = 20
SUGGESTED_ACTIONS = (Action.REJECT, Action.HOLD)


class Facts(BaseModel):
    """What DNS said about a look-alike's mail at one observation, and the SMTP probe."""

    state: MailState
    mx: list[str]
    spf: bool
    dmarc: bool
    probe: Probe | None = None


class CoveringRule(BaseModel):
    rule: str = Field(
        description="The rule that applies: suffix:ml or domain:army.ml, non-ASCII names in "
        "A-label form (a Cyrillic domain:аrmy.mil would read like domain:army.mil)."
    )
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
    probe: Probe | None = Field(description="The SMTP probe's answer, when it was probed.")
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
    probe: Probe | None = Field(description="The SMTP probe's answer, when it was probed.")
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
    suggested_rules: list[SuggestedRule] = Field(
        description="Those that take any recipient first, then the likeliest first."
    )


# --- what the page and the API read ---------------------------------------------------------


@dataclass(frozen=True)
class Latest:
    """The latest state of every look-alike and what follows from it and the rules: what
    only a new run or a changed rule changes.

    ``look_alikes`` holds each protected domain's look-alikes by rank (those that went
    too); ``rules`` the rule that covers a look-alike (A-label), for those a rule covers;
    ``suggested`` the look-alikes that take mail and no rule covers, those that take any
    recipient first, then the likeliest;
    ``covered`` those that take mail and a rule covers.
    """

    watched: list[WatchedDomain]
    look_alikes: dict[str, list[SeenLookAlike]]
    rules: dict[str, CoveringRule]
    suggested: list[SeenLookAlike]
    covered: list[SeenLookAlike]


class LatestFindings:
    """:class:`Latest`, read from the store again only when a run was kept since (and
    matched against the rules again only when a rule changed): the newest state of each
    look-alike is read from every run ever kept, too much for every view. One per app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: tuple[int, int] | None = None
        self._rules: tuple[int, int, datetime | None] | None = None
        self._snapshot: tuple[list[WatchedDomain], list[SeenLookAlike]] = ([], [])
        self._latest: Latest | None = None

    def read(self, ctx: WebContext) -> Latest:
        # Asked before reading: a run kept meanwhile makes the next view read again.
        runs, rules = ctx.store.look_alikes.version(), ctx.rules.version()
        with self._lock:
            if runs != self._runs:
                snapshots = ctx.store.look_alikes
                self._snapshot = (snapshots.watched(), list(snapshots.latest().values()))
                self._runs, self._latest = runs, None
            if self._latest is None or rules != self._rules:
                self._latest, self._rules = _match(ctx, *self._snapshot), rules
            return self._latest


def _match(ctx: WebContext, watched: list[WatchedDomain], latest: list[SeenLookAlike]) -> Latest:
    book = rule_book(ctx)
    look_alikes: dict[str, list[SeenLookAlike]] = defaultdict(list)
    rules: dict[str, CoveringRule] = {}
    suggested: list[SeenLookAlike] = []
    covered: list[SeenLookAlike] = []
    for seen in latest:  # by intended domain and rank
        look_alikes[seen.intended].append(seen)
        rule = covering(book, seen.domain)
        if rule is not None:
            rules[seen.domain] = rule
        if MailState(seen.state).accepts_mail:
            (covered if rule is not None else suggested).append(seen)
    # A look-alike proven to take any recipient first: every slip towards it is read.
    suggested.sort(
        key=lambda seen: (seen.probe != Probe.ACCEPTS_ALL, -seen.probability, seen.domain)
    )
    return Latest(watched, dict(look_alikes), rules, suggested, covered)


def latest_findings(request: Request, ctx: Context) -> Latest:
    """The app's :class:`Latest` (a dependency)."""
    findings: LatestFindings = request.app.state.monitor_findings
    return findings.read(ctx)


LatestNow = Annotated[Latest, Depends(latest_findings)]


def mount(app: FastAPI) -> None:
    """Serve the monitor's page and API in ``app``, with the findings it keeps between runs."""
    app.state.monitor_findings = LatestFindings()
    app.include_router(api)
    app.include_router(pages)


def rule_book(ctx: WebContext) -> RuleBook:
    """The rules in force for every sender: the configuration's, then the stored ones (as
    the Guard has them). A rule for some senders covers no look-alike for everyone."""
    return rule_books(ctx.rules.in_force(ctx.config.rules))[0]


def covering(book: RuleBook, domain: str) -> CoveringRule | None:
    """The rule that applies to ``domain`` (A-label), if one does."""
    try:
        rule = book.match(parse_domain(domain))
    except InvalidAddress:  # stored from DNS names the monitor made: not expected
        return None
    if rule is None:
        return None
    return CoveringRule(rule=rule.target, action=rule.action)


def monitored(
    seen: SeenLookAlike, latest: Latest, before: SeenLookAlike | None = None
) -> MonitoredLookAlike:
    """``seen`` with the rule that covers it, and ``before`` it (for a change)."""
    return MonitoredLookAlike(
        domain=seen.display,
        ascii=seen.domain,
        intended=seen.intended,
        probability=round(seen.probability, 6),  # as typogate monitor --json
        rank=seen.rank,
        state=MailState(seen.state),
        mx=list(seen.mx),
        spf=seen.spf,
        dmarc=seen.dmarc,
        probe=_probe(seen),
        change=Change(seen.change),
        run=seen.run,
        before=(
            Facts(
                state=MailState(before.state),
                mx=list(before.mx),
                spf=before.spf,
                dmarc=before.dmarc,
                probe=_probe(before),
            )
            if before is not None
            else None
        ),
        covered_by=latest.rules.get(seen.domain),
    )


def run_changes(
    ctx: WebContext,
    latest: Latest,
    run: int,
    limit: int | None = None,
    intended: set[str] | None = None,
) -> list[MonitoredLookAlike]:
    """What run ``run`` found new, changed or gone (the first ``limit``, by protected
    domain and rank; only those of the ``intended`` domains, when given), each with what it
    was before."""
    snapshots = ctx.store.look_alikes
    found = snapshots.changes(run, limit)
    if intended is not None:
        found = [seen for seen in found if seen.intended in intended]
    before = snapshots.earlier([seen.domain for seen in found], run)
    return [monitored(seen, latest, before.get(seen.domain)) for seen in found]


def suggestion(seen: SeenLookAlike, action: Action = Action.REJECT) -> SuggestedRule:
    """The domain rule for a look-alike that takes mail. It names the A-label form: an IDN
    look-alike written in Unicode would read like the domain it imitates."""
    name = seen.display if seen.display == seen.domain else f"{seen.display} ({seen.domain})"
    return SuggestedRule(
        look_alike=seen.display,
        ascii=seen.domain,
        intended=seen.intended,
        probability=round(seen.probability, 6),  # as typogate monitor --json
        state=MailState(seen.state),
        mx=list(seen.mx),
        probe=_probe(seen),
        rule=RuleModel(
            domain=seen.domain,
            action=action,
            message=f"{name} is a look-alike of {seen.intended}.",
        ),
    )


def _probe(seen: SeenLookAlike) -> Probe | None:
    return Probe(seen.probe) if seen.probe is not None else None


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
        said.append(f"hosts {' '.join(before.mx)} → {' '.join(look_alike.mx)}")
    for name, was, now in (
        ("SPF", before.spf, look_alike.spf),
        ("DMARC", before.dmarc, look_alike.dmarc),
    ):
        if was != now:
            said.append(f"{name} {'appeared' if now else 'removed'}")
    # The run compared the probe's answer with the last one the server gave, which may be
    # older than the observation before: when nothing else changed, that answer is it.
    probe, earlier = look_alike.probe, before.probe
    news = probe is not None and probe.answered and probe is not earlier
    if probe is not None and news and ((earlier is not None and earlier.answered) or not said):
        said.append(f"{probe.in_words} now")
    return "; ".join(said) or "unchanged"


def _normal(names: list[str]) -> set[str]:
    """Protected domains as the store keeps them (Unicode form); a name that is not a
    domain matches nothing."""
    found = set()
    for name in names:
        try:
            found.add(parse_domain(name.strip()).unicode)
        except InvalidAddress:
            continue
    return found


# --- the API ---------------------------------------------------------------------------------


@api.get("", response_model=MonitorOverview)
def monitor_overview(
    who: Viewer,
    ctx: Context,
    latest: LatestNow,
    run: Annotated[
        int | None, Query(ge=1, description="Whose changes to list; default the newest run.")
    ] = None,
    intended: Annotated[
        list[str] | None,
        Query(description="Only these protected domains (changes, look-alikes, rules)."),
    ] = None,
) -> Any:
    """The monitor's latest findings: the runs, what a run found new, changed or gone, the
    latest state of each look-alike that exists, and a rule for each one that takes mail
    and no rule covers (add it with ``POST /api/rules``)."""
    runs = ctx.store.look_alikes.runs(limit=RUNS_SHOWN)
    shown = run if run is not None else (runs[0].id if runs else None)
    wanted = _normal(intended) if intended else None

    def asked(name: str) -> bool:
        return wanted is None or name in wanted

    return MonitorOverview(
        runs=[MonitorRunModel.model_validate(r) for r in runs],
        run=shown,
        changes=run_changes(ctx, latest, shown, intended=wanted) if shown is not None else [],
        protected=[ProtectedDomain.model_validate(w) for w in latest.watched if asked(w.intended)],
        look_alikes=[
            monitored(seen, latest)
            for name, seen_ones in latest.look_alikes.items()
            if asked(name)
            for seen in seen_ones
            if seen.state != MailState.NXDOMAIN
        ],
        suggested_rules=[suggestion(s) for s in latest.suggested if asked(s.intended)],
    )


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
    latest: LatestNow,
    run: int | None = None,
    intended: str = "",
    page: int = 1,
    added: str = "",
) -> HTMLResponse:
    return _page(request, who, ctx, latest, run=run, intended=intended, page=page, added=added)


@pages.post("/monitor/rules")
def block_look_alike(
    request: Request,
    who: Admin,
    ctx: Context,
    latest: LatestNow,
    domain: Annotated[str, Form(max_length=255)],
    action: Annotated[str, Form(max_length=16)] = Action.REJECT.value,
) -> Response:
    """Add the suggested rule for a look-alike that takes mail (reject or hold)."""
    if action not in SUGGESTED_ACTIONS:
        problem = f"a suggested rule rejects or holds, not {action!r}"
        return _page(request, who, ctx, latest, error=problem, status=422)
    wanted = domain.strip().lower()
    chosen = next((seen for seen in latest.suggested if seen.domain == wanted), None)
    if chosen is None:
        rule = latest.rules.get(wanted)
        if rule is not None:
            problem = f"{wanted} is covered already: {rule.rule} → {rule.action.value}"
            return _page(request, who, ctx, latest, error=problem, status=409)
        problem = f"{wanted} is not a look-alike the monitor last saw taking mail"
        return _page(request, who, ctx, latest, error=problem, status=422)
    try:
        save_rule(ctx, suggestion(chosen, Action(action)).rule, who.username, None)
    except HTTPException as refused:
        problem, status = str(refused.detail), refused.status_code
        return _page(request, who, ctx, latest, error=problem, status=status)
    return RedirectResponse(f"/monitor?added={quote(wanted)}#suggested", status_code=303)


def _page(
    request: Request,
    who: SignedIn,
    ctx: WebContext,
    latest: Latest,
    *,
    run: int | None = None,
    intended: str = "",
    page: int = 1,
    added: str = "",
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    runs = ctx.store.look_alikes.runs(limit=RUNS_SHOWN)
    shown = run if run is not None else (runs[0].id if runs else None)
    # One more than shown: whether there are more.
    changes = run_changes(ctx, latest, shown, LIST_SHOWN + 1) if shown is not None else []
    watched, suggested, covered = latest.watched, latest.suggested, latest.covered
    if intended.strip():
        names = _normal([intended])
        watched = [w for w in watched if w.intended in names]
        suggested = [s for s in suggested if s.intended in names]
        covered = [c for c in covered if c.intended in names]
    pages_count = max(1, math.ceil(len(watched) / PAGE_DOMAINS))
    page = min(max(page, 1), pages_count)
    sections = []
    for domain in watched[(page - 1) * PAGE_DOMAINS : page * PAGE_DOMAINS]:
        mine = [monitored(seen, latest) for seen in latest.look_alikes.get(domain.intended, [])]
        sections.append(
            ProtectedSection(
                domain,
                [m for m in mine if m.state is not MailState.NXDOMAIN],
                [m for m in mine if m.state is MailState.NXDOMAIN and m.run == domain.run],
            )
        )
    return render(
        request,
        "monitor.html",
        who,
        status,
        runs=runs,
        shown=shown,
        shown_record=next((r for r in runs if r.id == shown), None),
        changes=changes[:LIST_SHOWN],
        changes_more=len(changes) > LIST_SHOWN,
        changed_words={c.ascii: what_changed(c) for c in changes},
        watched=latest.watched,
        suggested_total=len(suggested),
        suggested=[suggestion(s) for s in suggested[:LIST_SHOWN]],
        covered_total=len(covered),
        covered=[monitored(c, latest) for c in covered[:LIST_SHOWN]],
        sections=sections,
        intended=intended,
        page=page,
        pages_count=pages_count,
        outcome=_added_rule(ctx, added),
        added=added,
        error=error,
        actions=SUGGESTED_ACTIONS,
    )


def _added_rule(ctx: WebContext, added: str) -> Any:
    """The stored rule for the look-alike just blocked: read from the store, never from the
    URL's text."""
    if not added:
        return None
    for stored in reversed(ctx.rules.all()):
        try:
            rule = stored.rule
            if rule.domain and not rule.senders and parse_domain(rule.domain).ascii == added:
                return stored
        except InvalidAddress:  # a rule stored before today's checks
            continue
    return None
