"""What happened: the reads behind the dashboard and the API.

Charts and top lists read the ``incidents`` table (daily counts the writer keeps), never
the events themselves, so they cost the same with a thousand events or a hundred million.
Event listings page backwards from the newest id (keyset paging, an index walk).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from typogate.store.models import CorrespondentRow, EventRow, HoldRow, IncidentRow

ALERTS = ("warn", "hold", "reject")


@dataclass(frozen=True, slots=True)
class DayCounts:
    """Verdicts of one day (UTC), by action."""

    day: str
    allow: int = 0
    warn: int = 0
    hold: int = 0
    reject: int = 0


@dataclass(frozen=True, slots=True)
class TopDomain:
    """A suspected typo domain, what it was taken for, and how often it was caught."""

    domain: str
    suggestion: str
    count: int
    senders: int


@dataclass(frozen=True, slots=True)
class TopSender:
    """A sender whose mail was caught, and how often."""

    sender: str
    count: int
    domains: int


class History:
    """Read-only views of the store for people: counts, top lists, events, correspondents."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _since(self, days: int) -> str:
        return (datetime.now(UTC).date() - timedelta(days=days - 1)).isoformat()

    def by_day(self, days: int = 30) -> list[DayCounts]:
        """One entry per day of the last ``days`` days, oldest first, zeros included."""
        first = self._since(days)
        query = (
            select(IncidentRow.day, IncidentRow.action, func.sum(IncidentRow.count))
            .where(IncidentRow.day >= first)
            .group_by(IncidentRow.day, IncidentRow.action)
        )
        counts: dict[str, dict[str, int]] = {}
        with Session(self.engine) as session:
            for day, action, count in session.execute(query):
                counts.setdefault(day, {})[action] = int(count)
        start = date.fromisoformat(first)
        return [
            DayCounts(day, **counts.get(day, {}))
            for day in ((start + timedelta(days=n)).isoformat() for n in range(days))
        ]

    def top_domains(self, days: int = 30, limit: int = 10) -> list[TopDomain]:
        """The domains caught most often (warn, hold, reject) in the last ``days`` days."""
        total = func.sum(IncidentRow.count)
        query = (
            select(
                IncidentRow.domain,
                IncidentRow.suggestion,
                total,
                func.count(func.distinct(IncidentRow.sender)),
            )
            .where(IncidentRow.day >= self._since(days), IncidentRow.action.in_(ALERTS))
            .group_by(IncidentRow.domain, IncidentRow.suggestion)
            .order_by(total.desc(), IncidentRow.domain)
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [TopDomain(d, s, int(n), int(k)) for d, s, n, k in session.execute(query)]

    def top_senders(self, days: int = 30, limit: int = 10) -> list[TopSender]:
        """The senders caught most often in the last ``days`` days."""
        total = func.sum(IncidentRow.count)
        query = (
            select(IncidentRow.sender, total, func.count(func.distinct(IncidentRow.domain)))
            .where(
                IncidentRow.day >= self._since(days),
                IncidentRow.action.in_(ALERTS),
                IncidentRow.sender != "",
            )
            .group_by(IncidentRow.sender)
            .order_by(total.desc(), IncidentRow.sender)
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [TopSender(s, int(n), int(k)) for s, n, k in session.execute(query)]

    def events(
        self,
        *,
        before: int | None = None,
        limit: int = 50,
        action: str | None = None,
        domain: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest events first; ``before`` is the smallest id of the previous page."""
        query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
        if before is not None:
            query = query.where(EventRow.id < before)
        if action is not None:
            query = query.where(EventRow.action == action)
        if domain is not None:
            query = query.where(EventRow.domain == domain)
        with Session(self.engine) as session:
            return [_event(row) for row in session.scalars(query)]

    def correspondents(self, sender: str = "*", limit: int = 100) -> list[dict[str, Any]]:
        """Learned correspondents of ``sender`` (``*``: the organisation), most mail first."""
        query = (
            select(CorrespondentRow)
            .where(CorrespondentRow.sender == sender)
            .order_by(CorrespondentRow.count.desc(), CorrespondentRow.recipient_domain)
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [
                {
                    "sender": row.sender,
                    "recipient_domain": row.recipient_domain,
                    "count": row.count,
                    "first_seen": row.first_seen.isoformat(),
                    "last_seen": row.last_seen.isoformat(),
                }
                for row in session.scalars(query)
            ]

    def verdicts_by_action(self) -> dict[str, int]:
        """Every verdict recorded, by action (allow, warn, hold, reject)."""
        query = select(IncidentRow.action, func.sum(IncidentRow.count)).group_by(IncidentRow.action)
        with Session(self.engine) as session:
            return {action: int(n) for action, n in session.execute(query)}

    def holds_by_state(self) -> dict[str, int]:
        """How many holds are in each state (held, released, deleted, gone)."""
        query = select(HoldRow.state, func.count()).group_by(HoldRow.state)
        with Session(self.engine) as session:
            return {state: int(n) for state, n in session.execute(query)}


def _event(row: EventRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "time": row.time.isoformat(),
        "recipient": row.recipient,
        "domain": row.domain,
        "action": row.action,
        "reason": row.reason,
        "suggestion": row.suggestion,
        "score": row.score,
        "rule": row.rule,
        "sender": row.sender,
        "adapter": row.adapter,
        "mode": row.mode,
        "queue_id": row.queue_id,
    }
