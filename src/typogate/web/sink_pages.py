"""The sink's dashboard page and its REST API (``/api/sink/...``): traffic over time, top
look-alikes, top sending domains, the reports per intended domain and the reports sent.

Everything reads the sink's records in the store (``SinkHistory``): the web part needs no
running sink, and shows what every sink instance on that store answered.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from typogate.web.access import Context, Viewer
from typogate.web.pages import render

api = APIRouter(prefix="/api/sink", tags=["sink"])
pages = APIRouter(include_in_schema=False)
_MAX_REPORT_DAYS = 366


class SinkDay(BaseModel):
    day: str
    hint: int
    unknown: int
    forwarded: int
    other: int


class TopLookalike(BaseModel):
    lookalike: str
    intended: str
    count: int


class TopSenderDomain(BaseModel):
    sender_domain: str
    count: int
    lookalikes: int


class SentReport(BaseModel):
    intended: str
    day: str
    contact: str
    messages: int
    state: str
    detail: str
    time: datetime


class SinkStats(BaseModel):
    days: int
    by_day: list[SinkDay]
    top_lookalikes: list[TopLookalike]
    top_sender_domains: list[TopSenderDomain]
    reports_sent: list[SentReport]


def sink_stats(ctx: Context, days: int) -> SinkStats:
    """What the sink page shows (the page and the API read the same)."""
    history = ctx.store.sink

    def models(model: type[BaseModel], rows: list[Any]) -> list[Any]:
        return [model.model_validate(row, from_attributes=True) for row in rows]

    return SinkStats(
        days=days,
        by_day=models(SinkDay, history.by_day(days)),
        top_lookalikes=models(TopLookalike, history.top_lookalikes(days)),
        top_sender_domains=models(TopSenderDomain, history.top_sender_domains(days)),
        reports_sent=models(SentReport, history.reports(limit=20)),
    )


@api.get("/stats", response_model=SinkStats)
def stats(who: Viewer, ctx: Context, days: Annotated[int, Query(ge=1, le=366)] = 30) -> Any:
    """Recipients the sink answered per day (by outcome), the look-alikes and sending
    domains with most misdirected mail, and the daily reports sent."""
    return sink_stats(ctx, days)


@api.get("/reports")
def reports(
    request: Request,
    who: Viewer,
    ctx: Context,
    since: Annotated[date, Query(description="First day, YYYY-MM-DD (UTC).")],
    until: Annotated[date | None, Query(description="Last day; default today.")] = None,
) -> list[dict[str, Any]]:
    """The reports of misdirected mail per intended domain, as ``typogate sink report
    --json`` prints them (docs/sink.md describes the fields)."""
    last = until or datetime.now(UTC).date()
    if last < since or (last - since).days >= _MAX_REPORT_DAYS:
        raise HTTPException(
            422, f"until must be on or after since, at most {_MAX_REPORT_DAYS} days"
        )
    found = ctx.store.sink.intended_reports(since, last)
    return [r.to_json(request.url.netloc) for r in found]


@pages.get("/sink")
def sink_page(request: Request, who: Viewer, ctx: Context, days: int = 30) -> HTMLResponse:
    days = min(max(days, 1), 366)
    stats = sink_stats(ctx, days)
    first = datetime.now(UTC).date() - timedelta(days=days - 1)
    found = ctx.store.sink.intended_reports(first, datetime.now(UTC).date())
    return render(
        request,
        "sink.html",
        who,
        stats=stats,
        chart=[d.model_dump() for d in stats.by_day],
        intended=found[:20],
    )
