"""The monitor's snapshots: each run and the look-alikes it saw, and their latest state.

A run keeps only look-alikes that exist, and those that went (state ``nxdomain``, change
``gone``): so the newest row of a domain is its latest known state, whichever run saw it
last. :meth:`LookAlikeSnapshots.latest_states` is what the gateway loads to weigh a slip
towards a look-alike that accepts mail.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from typogate.store.models import LookAlikeRow, MonitorRunRow


@dataclass(frozen=True, slots=True)
class SeenLookAlike:
    """A look-alike as a run saw it; ``domain`` in A-label form, ``display`` in Unicode.

    ``state`` and ``change`` are the monitor's words (``mx``, ``new``); ``probe`` is the
    SMTP probe's answer, or None when it was not probed. ``run`` is the run's id.
    """

    domain: str
    display: str
    intended: str
    probability: float
    rank: int
    state: str
    mx: tuple[str, ...]
    spf: bool
    dmarc: bool
    probe: str | None
    change: str
    run: int = 0


@dataclass(frozen=True, slots=True)
class MonitorRunRecord:
    """One run: when, how many protected domains and look-alikes, how many changes."""

    id: int
    started: datetime
    finished: datetime
    protected: int
    asked: int
    changes: int


class LookAlikeSnapshots:
    """The monitor's runs and look-alikes in the store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        started: datetime,
        finished: datetime,
        protected: int,
        asked: int,
        seen: Iterable[SeenLookAlike],
    ) -> int:
        """Keep one run and its look-alikes in one transaction; returns the run's id."""
        rows = list(seen)
        changes = sum(1 for row in rows if row.change != "same")
        with Session(self.engine) as session, session.begin():
            run = MonitorRunRow(
                started=started,
                finished=finished,
                protected=protected,
                asked=asked,
                changes=changes,
            )
            session.add(run)
            session.flush()
            if rows:
                session.execute(
                    insert(LookAlikeRow),
                    [
                        {
                            "run_id": run.id,
                            "domain": row.domain,
                            "display": row.display,
                            "intended": row.intended,
                            "probability": row.probability,
                            "rank": row.rank,
                            "state": row.state,
                            "mx": json.dumps(list(row.mx)),
                            "spf": row.spf,
                            "dmarc": row.dmarc,
                            "probe": row.probe,
                            "change": row.change,
                        }
                        for row in rows
                    ],
                )
            return run.id

    def latest(self) -> dict[str, SeenLookAlike]:
        """Every look-alike ever seen, by A-label domain, as its newest observation."""
        newest = (
            select(LookAlikeRow.domain, func.max(LookAlikeRow.run_id).label("run_id"))
            .group_by(LookAlikeRow.domain)
            .subquery()
        )
        query = select(LookAlikeRow).join(
            newest,
            (LookAlikeRow.domain == newest.c.domain) & (LookAlikeRow.run_id == newest.c.run_id),
        )
        with Session(self.engine) as session:
            return {row.domain: _seen(row) for row in session.scalars(query)}

    def latest_states(self) -> dict[str, str]:
        """The latest state of every look-alike seen (A-label domain -> ``mx``, ``a_only``,
        ``null_mx``, ``no_mail``, ``unresolved``, or ``nxdomain`` once it went): what the
        gateway loads. A domain not in it was never seen to exist."""
        return {domain: seen.state for domain, seen in self.latest().items()}

    def runs(self, limit: int = 20) -> list[MonitorRunRecord]:
        """The newest runs first."""
        query = select(MonitorRunRow).order_by(MonitorRunRow.id.desc()).limit(limit)
        with Session(self.engine) as session:
            return [
                MonitorRunRecord(r.id, r.started, r.finished, r.protected, r.asked, r.changes)
                for r in session.scalars(query)
            ]

    def snapshot(self, run: int) -> list[SeenLookAlike]:
        """The look-alikes one run kept, by intended domain and rank."""
        query = (
            select(LookAlikeRow)
            .where(LookAlikeRow.run_id == run)
            .order_by(LookAlikeRow.intended, LookAlikeRow.rank)
        )
        with Session(self.engine) as session:
            return [_seen(row) for row in session.scalars(query)]


def _seen(row: LookAlikeRow) -> SeenLookAlike:
    return SeenLookAlike(
        domain=row.domain,
        display=row.display,
        intended=row.intended,
        probability=row.probability,
        rank=row.rank,
        state=row.state,
        mx=tuple(json.loads(row.mx)),
        spf=row.spf,
        dmarc=row.dmarc,
        probe=row.probe,
        change=row.change,
        run=row.run_id,
    )
