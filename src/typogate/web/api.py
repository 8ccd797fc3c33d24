"""The REST API under ``/api``: events, holds, release, rules, correspondents, stats, check.

Signed in by session cookie (``POST /api/session`` or the login form); every request that
changes something sends the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from typogate.config import rule_problem
from typogate.domains import InvalidAddress, is_utf8, printable_form, written_form
from typogate.errors import HoldError
from typogate.gateway.quarantine import Outcome, UnknownHold
from typogate.policy import Rule
from typogate.store.records import LearnRefusal
from typogate.vocabulary import Action, HoldSource, HoldState, Mode, SenderSaid
from typogate.web import access
from typogate.web.access import Admin, Context, Viewer, Writer

router = APIRouter(prefix="/api", tags=["api"])


class _Record(BaseModel):
    """A response read straight from a store record (a dataclass)."""

    model_config = ConfigDict(from_attributes=True)


# An address as its sender writes it. The store keeps it as the policy service is handed
# it, unquoted: `bob<carol@example.org` would name carol@example.org to a program reading it.
WrittenAddress = Annotated[str, AfterValidator(written_form)]


class _Input(BaseModel):
    """A request body. JSON may write a lone surrogate (``"\\ud800"``), which Python reads
    and no database driver writes, and a NUL (``"\\u0000"``), which PostgreSQL refuses in
    text: such a body is refused here (422, saying why), on every store alike, not by the
    driver."""

    @model_validator(mode="before")
    @classmethod
    def _unicode_text(cls, data: Any) -> Any:
        why = _unwritable(data)
        if why is not None:
            raise ValueError(why)
        return data


def _unwritable(value: Any) -> str | None:
    """Why a value read from JSON cannot be stored, or None."""
    if isinstance(value, str):
        if not is_utf8(value):
            return "not Unicode text: a lone surrogate (\\ud800 to \\udfff)"
        return "not text the store keeps: a NUL (\\u0000)" if "\x00" in value else None
    if isinstance(value, dict):
        parts = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        parts = value
    else:
        return None
    return next((why for part in parts if (why := _unwritable(part)) is not None), None)


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def writable_form(request: Request) -> None:
    """Refuse a page's form that holds text no store keeps (a NUL), ``422`` naming the
    field, before any handler stores it: PostgreSQL refuses it and SQLite would keep it,
    and a page should do the same on both (as the API does for JSON)."""
    if not request.headers.get("content-type", "").startswith(_FORMS):
        return
    for name, value in (await request.form()).multi_items():
        why = _unwritable(name) or (_unwritable(value) if isinstance(value, str) else None)
        if why is not None:
            raise HTTPException(422, f"{printable_form(name)}: {why}")


# A row id as the store numbers rows (64 bits): a larger one is no row, and no database
# takes it (SQLite: OverflowError, PostgreSQL: "out of range").
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Event(_Record):
    id: int
    time: datetime
    recipient: WrittenAddress
    domain: str
    action: Action
    reason: str
    suggestion: str | None
    score: float
    rule: str
    sender: WrittenAddress | None
    adapter: str
    mode: Mode
    queue_id: str | None


class Hold(_Record):
    hold_id: str
    time: datetime
    source: HoldSource
    sender: WrittenAddress | None
    recipients: list[WrittenAddress]
    reasons: list[str]
    suggestions: list[str | None]
    queue_id: str | None
    state: HoldState
    subject: str | None = Field(None, description="The message's subject, once read.")
    written: datetime | None = Field(None, description="Its Date header, once read.")
    all_recipients: list[str] = Field(
        [],
        description="Every recipient of the message, once read (recipients: those that held it).",
    )


class HoldActionRequest(_Input):
    why: str = Field("", max_length=1000, description="Why: kept in the audit trail.")


class DeleteRequest(HoldActionRequest):
    confirm: bool = Field(False, description="Must be true: a deleted message is gone.")


class HoldOutcome(BaseModel):
    hold_id: str
    state: HoldState
    message: str


class RuleModel(_Input):
    """A blanket rule: exactly one of ``suffix`` or ``domain``."""

    suffix: str | None = None
    domain: str | None = None
    action: Action
    exceptions: list[str] = []
    message: str | None = None
    senders: list[str] = Field(
        [],
        description="Sender addresses or domains the rule is for (an allow rule only); "
        "empty: every sender.",
    )


class StoredRuleModel(RuleModel):
    id: int
    author: str
    updated: datetime
    problem: str | None = Field(
        None, description="Why a rule stored before today's checks is not used (fix or remove it)."
    )


class ConfiguredRuleModel(RuleModel):
    source: Literal["config"] = "config"


class Rules(BaseModel):
    configured: list[ConfiguredRuleModel]
    stored: list[StoredRuleModel]


class Correspondent(_Record):
    sender: WrittenAddress
    recipient_domain: str
    count: int  # messages delivered to the domain
    first_seen: datetime
    last_seen: datetime
    received: int  # messages received from it
    released: int  # messages to it released from hold, or warnings about it confirmed


class DayCounts(BaseModel):
    day: str
    allow: int
    warn: int
    hold: int
    reject: int


class TopDomain(BaseModel):
    domain: str
    suggestion: str
    count: int
    senders: int


class TopSender(BaseModel):
    sender: WrittenAddress
    count: int
    domains: int


class TopPair(BaseModel):
    sender: WrittenAddress
    domain: str
    suggestion: str
    count: int
    released: int  # held messages the sender released there, and warnings it confirmed


class SenderWord(_Record):
    time: datetime
    sender: WrittenAddress
    said: SenderSaid  # release (a held message, hold_id) or confirm (a warning's recipients)
    recipients: list[WrittenAddress]
    hold_id: str | None


class Refused(_Record):
    domain: str
    sender: WrittenAddress
    deliveries: int  # this sender's, in the logs learned
    suggestion: str | None
    why: str
    time: datetime  # of the learn that refused it


class Stats(BaseModel):
    days: int
    by_day: list[DayCounts]
    top_domains: list[TopDomain]
    top_senders: list[TopSender]
    holds: dict[HoldState, int]


class Credentials(_Input):
    username: str
    password: str


class SessionInfo(BaseModel):
    username: str
    role: str
    csrf_token: str = Field(description="Send back in X-CSRF-Token on every change.")


@router.post("/session", response_model=SessionInfo)
def sign_in(credentials: Credentials, request: Request, response: Response, ctx: Context) -> Any:
    """Sign in; sets the session cookie and returns the CSRF token for changes."""
    try:
        token = access.sign_in(request, ctx, credentials.username, credentials.password, response)
    except access.SignInRefused as refused:
        raise HTTPException(refused.status, str(refused), refused.headers) from None
    who = ctx.accounts.session(token)
    assert who is not None
    return SessionInfo(username=who.username, role=who.role.value, csrf_token=who.csrf_token)


@router.delete("/session", status_code=204)
def sign_out(request: Request, response: Response, who: Writer, ctx: Context) -> None:
    """Sign out: the session ends on the server, not only in this browser."""
    access.sign_out(request, ctx, response)


@router.get("/events", response_model=list[Event])
def events(
    who: Viewer,
    ctx: Context,
    before: Annotated[
        RowId | None, Query(description="Page on: the last page's smallest id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    action: Action | None = None,
    domain: str | None = None,
) -> Any:
    """Verdict events, newest first."""
    return ctx.history.events(before=before, limit=limit, action=action, domain=domain)


@router.get("/holds", response_model=list[Hold])
def holds(who: Viewer, ctx: Context, state: HoldState = HoldState.HELD) -> Any:
    """Held messages in one state, oldest first."""
    return ctx.store.holds.in_state(state)


@router.post("/holds/{hold_id}/release", response_model=HoldOutcome)
def release(hold_id: str, body: HoldActionRequest, who: Admin, ctx: Context) -> Any:
    """Release a held message to its recipients (admin). Releasing twice is harmless."""
    return _outcome(lambda: ctx.quarantine.release(hold_id, who.username, body.why))


@router.post("/holds/{hold_id}/delete", response_model=HoldOutcome)
def delete(hold_id: str, body: DeleteRequest, who: Admin, ctx: Context) -> Any:
    """Delete a held message for good (admin); needs ``confirm: true``."""
    return _outcome(
        lambda: ctx.quarantine.delete(hold_id, who.username, body.why, confirm=body.confirm)
    )


def _outcome(act: Any) -> HoldOutcome:
    try:
        outcome: Outcome = act()
    except UnknownHold as error:
        raise HTTPException(404, str(error)) from None
    except HoldError as error:  # needs confirmation, no queue id, postsuper refused
        raise HTTPException(409, str(error)) from None
    return HoldOutcome(hold_id=outcome.hold_id, state=outcome.state, message=outcome.message)


@router.get("/rules", response_model=Rules)
def rules(who: Viewer, ctx: Context) -> Any:
    """The configuration's rules (read-only here) and the stored ones, in the order used."""
    return Rules(
        configured=[ConfiguredRuleModel(**_rule_fields(rule)) for rule in ctx.config.rules],
        stored=[
            StoredRuleModel(
                id=r.id,
                author=r.author,
                updated=r.updated,
                problem=r.problem,
                **_rule_fields(r.rule),
            )
            for r in ctx.rules.all()
        ],
    )


@router.post("/rules", response_model=StoredRuleModel, status_code=201)
def add_rule(body: RuleModel, who: Admin, ctx: Context) -> Any:
    """Add a rule (admin); it applies to the next verdict."""
    return save_rule(ctx, body, who.username, None)


@router.put("/rules/{rule_id}", response_model=StoredRuleModel)
def change_rule(rule_id: RowId, body: RuleModel, who: Admin, ctx: Context) -> Any:
    """Replace a stored rule (admin)."""
    return save_rule(ctx, body, who.username, rule_id)


@router.delete("/rules/{rule_id}", status_code=204)
def remove_rule(rule_id: RowId, who: Admin, ctx: Context) -> None:
    """Remove a stored rule (admin)."""
    if not ctx.rules.remove(rule_id):
        raise HTTPException(404, f"no rule {rule_id}")
    ctx.apply_rules()


def save_rule(ctx: Context, body: RuleModel, author: str, rule_id: int | None) -> StoredRuleModel:
    """Validate, store and apply one rule; 422 with the reason when it is not valid (the
    checks of :class:`~typogate.config.Rule`, the same as for the configuration file)."""
    try:
        rule = Rule.model_validate(
            {
                "suffix": body.suffix or None,
                "domain": body.domain or None,
                "action": body.action,
                "except": body.exceptions,
                "message": body.message or None,
                "senders": body.senders,
            }
        )
    except ValidationError as error:
        raise HTTPException(422, rule_problem(error)) from None
    try:
        stored = ctx.rules.save(rule, author, rule_id)
    except KeyError:
        raise HTTPException(404, f"no rule {rule_id}") from None
    ctx.apply_rules()
    return StoredRuleModel(
        id=stored.id, author=stored.author, updated=stored.updated, **_rule_fields(stored.rule)
    )


def _rule_fields(rule: Rule) -> dict[str, Any]:
    """A rule's own fields under their names (``exceptions``), as the API's models have them."""
    return rule.model_dump(mode="json")


@router.get("/correspondents", response_model=list[Correspondent])
def correspondents(
    who: Viewer,
    ctx: Context,
    sender: Annotated[str, Query(description="Address, domain, or * (organisation).")] = "*",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Learned correspondents: where this sender's mail really goes, and the evidence
    (mail delivered, received, released or confirmed), most evidence first."""
    return ctx.history.correspondents(sender, limit)


@router.get("/stats", response_model=Stats)
def stats(who: Viewer, ctx: Context, days: Annotated[int, Query(ge=1, le=366)] = 30) -> Any:
    """Verdicts per day, top suspected typo domains and senders, holds by state."""
    return dashboard_stats(ctx, days)


@router.get("/pairs", response_model=list[TopPair])
def pairs(
    who: Viewer,
    ctx: Context,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """One sender's mail to one suspected typo domain, the pairs caught most often first
    (the page /pairs lists the same): a review of false alarms goes by pair."""
    return [
        TopPair.model_validate(p, from_attributes=True) for p in ctx.history.top_pairs(days, limit)
    ]


@router.get("/said", response_model=list[SenderWord])
def said(who: Viewer, ctx: Context, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    """What senders said with the links of their notices, newest first: each held message
    a sender released, and each warning it confirmed (which ends that sender's warnings
    about those domains; /pairs lists the latest too)."""
    return ctx.store.holds.said(limit)


@router.get("/refused", response_model=list[Refused])
def refused(who: Viewer, ctx: Context, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    """What ``typogate learn`` refused to learn, by domain and each sender of ours who wrote
    there (as the latest run that judged the domain counted it), most first (the page
    /pairs lists the same): the admin's first review asks each sender whether the domain
    is meant. A pair typogate no longer questions (an
    allow rule, an answer or a release since) is left out."""
    return still_refused(ctx, limit)


# The refusals weighed for one answer: a learn over years of logs refuses hundreds; each is
# judged again (about a tenth of a millisecond), so an answer stays well under a second.
REFUSALS_WEIGHED = 5000


def still_refused(ctx: Context, limit: int) -> list[LearnRefusal]:
    """What learn refused, less the pairs the Guard in use no longer questions:
    the first ``limit`` of those left, most written to first."""
    guard = ctx.guard

    def questioned(refusal: LearnRefusal) -> bool:
        try:
            return guard.evaluate(f"postmaster@{refusal.domain}", refusal.sender).is_alert
        except InvalidAddress:
            return True  # learn judged it a domain; kept in sight if this Guard cannot

    left = (r for r in ctx.history.learn_refusals(REFUSALS_WEIGHED) if questioned(r))
    return list(itertools.islice(left, limit))


def dashboard_stats(ctx: Context, days: int) -> Stats:
    """What the dashboard shows (the page and the API read the same)."""
    history = ctx.history
    return Stats(
        days=days,
        by_day=[DayCounts.model_validate(d, from_attributes=True) for d in history.by_day(days)],
        top_domains=[
            TopDomain.model_validate(d, from_attributes=True) for d in history.top_domains(days)
        ],
        top_senders=[
            TopSender.model_validate(s, from_attributes=True) for s in history.top_senders(days)
        ],
        holds=ctx.store.holds.count_by_state(),
    )


@router.get("/check")
def check(
    who: Viewer,
    ctx: Context,
    recipient: Annotated[str, Query(max_length=1024)],
    sender: Annotated[str | None, Query(max_length=1024)] = None,
    shown_as: Annotated[str | None, Query(max_length=4096)] = None,
) -> dict[str, Any]:
    """The verdict for one recipient address (nothing is recorded); ``shown_as``, the
    display name the sender sees it under, as a mail program's add-in knows it."""
    try:
        return ctx.guard.evaluate(recipient, sender, shown_as=shown_as).to_dict()
    except InvalidAddress as error:
        raise HTTPException(422, f"not a valid address: {error.reason}") from None
