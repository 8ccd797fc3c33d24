"""The monitor's snapshots: each run and the look-alikes it saw, and their latest state.

A run keeps only look-alikes that exist, and those that went (state ``nxdomain``, change
``gone``): so the newest row of a domain is its latest known state, whichever run saw it
last. Runs older than the days the monitor keeps are forgotten, never that newest row.
:meth:`LookAlikeSnapshots.latest_states` is what the gateway loads to weigh a slip
towards a look-alike that accepts mail.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Row,
    Select,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from typogate.store.models import LookAlikeRow, MonitorRunRow
from typogate.store.records import MonitorRunRecord, SeenLookAlike, WatchedDomain, utc
from typogate.vocabulary import Change, MailState

# Names per statement: well under SQLite's limits on terms of a UNION (500) and on
# bound parameters.
_UNION_BATCH = 200
# Read as plain rows, not ORM objects: the newest of each look-alike is read from every
# run ever kept, and that is most of the time the page and the gateway's start take.
_ROWS = LookAlikeRow.__table__


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
                # A None written as NULL: the ORM's bulk insert leaves a None column out,
                # and rows with and without a probe answer then split into many INSERTs
                # (a probed run took several times as long to keep; bench/monitor_page.py).
                session.execute(
                    insert(LookAlikeRow).execution_options(render_nulls=True),
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

    def forget(self, before: datetime) -> int:
        """Forget the runs that started before ``before``, except each look-alike's last
        observation among them and the runs that hold one; how many observations went.
        That observation is what the first kept run's change of it came from, or its
        newest (one that went stays known as gone). Without it every run is kept for
        good, and every start of a gateway and the dashboard reads them all."""
        old = select(MonitorRunRow.id).where(MonitorRunRow.started < before)
        newer = aliased(LookAlikeRow)
        superseded = exists().where(
            newer.domain == LookAlikeRow.domain,
            newer.run_id > LookAlikeRow.run_id,
            newer.run_id.in_(old),
        )
        held = exists().where(LookAlikeRow.run_id == MonitorRunRow.id)
        with self.engine.begin() as connection:
            gone = connection.execute(
                delete(LookAlikeRow).where(LookAlikeRow.run_id.in_(old), superseded)
            ).rowcount
            connection.execute(delete(MonitorRunRow).where(MonitorRunRow.started < before, ~held))
        return int(gone)

    def latest(self) -> dict[str, SeenLookAlike]:
        """Every look-alike ever seen, by A-label domain, as its newest observation, by
        intended domain and rank."""
        with Session(self.engine) as session:
            return {row.domain: _seen(row) for row in session.execute(self._newest())}

    def earlier(self, domains: Collection[str], run: int) -> dict[str, SeenLookAlike]:
        """The newest observation of each of ``domains`` (A-label) in a run before ``run``,
        for those seen before it: what a look-alike that run found ``changed`` or ``gone``
        changed from."""
        found: dict[str, SeenLookAlike] = {}
        with Session(self.engine) as session:
            # One indexed look-up per domain: grouping every row of the domains asked made
            # PostgreSQL read the whole table, which grows with every run kept.
            for names in _batches(domains, _UNION_BATCH):
                each = [
                    select(_ROWS)
                    .where(LookAlikeRow.domain == name, LookAlikeRow.run_id < run)
                    .order_by(LookAlikeRow.run_id.desc())
                    .limit(1)
                    .subquery()
                    for name in names
                ]
                query = union_all(*(select(newest) for newest in each))
                found.update((row.domain, _seen(row)) for row in session.execute(query))
        return found

    def watched(self) -> list[WatchedDomain]:
        """Every protected domain the monitor kept a look-alike of, those with most
        look-alikes taking mail first, then most that exist, then by name."""
        latest = self._newest().order_by(None).subquery()
        accepting = [state.value for state in MailState if state.accepts_mail]
        summary = (
            select(
                latest.c.intended,
                func.max(latest.c.run_id).label("run_id"),
                func.sum(case((latest.c.state != MailState.NXDOMAIN.value, 1), else_=0)).label(
                    "existing"
                ),
                func.sum(case((latest.c.state.in_(accepting), 1), else_=0)).label("accepting"),
            )
            .group_by(latest.c.intended)
            .subquery()
        )
        query = (
            select(summary, MonitorRunRow.finished)
            .join(MonitorRunRow, MonitorRunRow.id == summary.c.run_id)
            .order_by(summary.c.accepting.desc(), summary.c.existing.desc(), summary.c.intended)
        )
        with Session(self.engine) as session:
            return [
                WatchedDomain(
                    row.intended, row.run_id, utc(row.finished), row.existing, row.accepting
                )
                for row in session.execute(query)
            ]

    def latest_states(self) -> dict[str, str]:
        """The latest state of every look-alike seen (A-label domain -> ``mx``, ``a_only``,
        ``null_mx``, ``no_mail``, ``unresolved``, or ``nxdomain`` once it went): what the
        gateway loads. A domain not in it was never seen to exist."""
        return {domain: seen.state for domain, seen in self.latest().items()}

    def last_probes(self, answers: Collection[str]) -> dict[str, str]:
        """The newest of ``answers`` the SMTP probe had from each look-alike's server
        (A-label domain -> answer), for those it had one from: a run whose probe found
        no server, or that did not probe, says nothing of what the server does."""
        query = self._newest(LookAlikeRow.probe.in_(list(answers))).order_by(None)
        with Session(self.engine) as session:
            rows = session.execute(query)
            return {row.domain: row.probe for row in rows if row.probe is not None}

    def runs(self, limit: int = 20) -> list[MonitorRunRecord]:
        """The newest runs first."""
        query = select(MonitorRunRow).order_by(MonitorRunRow.id.desc()).limit(limit)
        with Session(self.engine) as session:
            return [
                MonitorRunRecord(
                    r.id, utc(r.started), utc(r.finished), r.protected, r.asked, r.changes
                )
                for r in session.scalars(query)
            ]

    def changes(self, run: int, limit: int | None = None) -> list[SeenLookAlike]:
        """The look-alikes one run found new, changed or gone, by intended domain and rank
        (the first ``limit`` of them, when given)."""
        query = (
            select(_ROWS)
            .where(LookAlikeRow.run_id == run, LookAlikeRow.change != Change.SAME.value)
            .order_by(LookAlikeRow.intended, LookAlikeRow.rank)
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [_seen(row) for row in session.execute(query)]

    def version(self) -> tuple[int, int]:
        """Changes whenever a run is kept (how many runs, and the newest's id): a cheap
        question before reading what only a new run changes."""
        query = select(func.count(), func.max(MonitorRunRow.id))
        with Session(self.engine) as session:
            count, newest = session.execute(query).one()
        return int(count), int(newest or 0)

    def snapshot(self, run: int) -> list[SeenLookAlike]:
        """The look-alikes one run kept, by intended domain and rank."""
        query = (
            select(_ROWS)
            .where(LookAlikeRow.run_id == run)
            .order_by(LookAlikeRow.intended, LookAlikeRow.rank)
        )
        with Session(self.engine) as session:
            return [_seen(row) for row in session.execute(query)]

    @staticmethod
    def _newest(*conditions: ColumnElement[bool]) -> Select[Any]:
        """The newest row of every look-alike (among the rows that meet ``conditions``),
        by intended domain and rank."""
        newest = (
            select(LookAlikeRow.domain, func.max(LookAlikeRow.run_id).label("run_id"))
            .where(*conditions)
            .group_by(LookAlikeRow.domain)
            .subquery()
        )
        return (
            select(_ROWS)
            .join(
                newest,
                (LookAlikeRow.domain == newest.c.domain) & (LookAlikeRow.run_id == newest.c.run_id),
            )
            .order_by(LookAlikeRow.intended, LookAlikeRow.rank)
        )


def _batches(names: Collection[str], size: int) -> Iterable[list[str]]:
    listed = list(names)
    for start in range(0, len(listed), size):
        yield listed[start : start + size]


def _seen(row: Row[Any]) -> SeenLookAlike:
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
