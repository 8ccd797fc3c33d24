"""What happened and who writes to whom: the reads behind the dashboard and the API, and
the learned correspondents.

Charts and top lists read the ``incidents`` table (daily counts the writer keeps), never
the events themselves, so they cost the same with a thousand events or a hundred million.
Event listings page backwards from the newest id (keyset paging, an index walk).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from typogate.errors import TypogateError
from typogate.policy.relationships import party_name
from typogate.store.models import (
    CorrespondentRow,
    EventRow,
    IncidentRow,
    LearnedLogRow,
    LearnedSetRow,
    LearnRefusalRow,
)
from typogate.store.records import (
    Correspondent,
    DayCounts,
    EventRecord,
    LearnRefusal,
    TopDomain,
    TopPair,
    TopSender,
    utc,
)
from typogate.store.writer import TALLY_COLUMN, EventWriter, Tally
from typogate.vocabulary import Action, Evidence, Mode


class LearnedMeanwhile(TypogateError, RuntimeError):
    """Another ``typogate learn`` stored one of the same logs while this one read it."""

    def __init__(self) -> None:
        super().__init__(
            "another typogate learn stored these logs while this one read them; nothing"
            " from this run was learned: run it again, it reads on from where that one"
            " stopped"
        )


# Domains named in one statement: SQLite takes at most 32,766 bound values per statement.
_PER_STATEMENT = 1000
ALERTS = (Action.WARN.value, Action.HOLD.value, Action.REJECT.value)


class History:
    """Views of the store for people (counts, top lists, events) and the learned
    correspondents."""

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

    def top_pairs(self, days: int = 30, limit: int = 10) -> list[TopPair]:
        """The (sender, domain) pairs caught most often in the last ``days`` days, each
        with what the sender released to the domain or confirmed (its own word)."""
        total = func.sum(IncidentRow.count)
        query = (
            select(IncidentRow.sender, IncidentRow.domain, IncidentRow.suggestion, total)
            .where(
                IncidentRow.day >= self._since(days),
                IncidentRow.action.in_(ALERTS),
                IncidentRow.sender != "",
            )
            .group_by(IncidentRow.sender, IncidentRow.domain, IncidentRow.suggestion)
            .order_by(total.desc(), IncidentRow.sender, IncidentRow.domain)
            .limit(limit)
        )
        with Session(self.engine) as session:
            caught = session.execute(query).all()
            # Senders and domains apart, not as row values: SQLite scans the table for a
            # list of row values, and finds a list of senders in the (sender, domain) index.
            said = select(
                CorrespondentRow.sender,
                CorrespondentRow.recipient_domain,
                CorrespondentRow.released,
            ).where(
                CorrespondentRow.sender.in_({s for s, *_ in caught}),
                CorrespondentRow.recipient_domain.in_({d for _, d, *_ in caught}),
                CorrespondentRow.released > 0,
            )
            released = {(s, d): n for s, d, n in session.execute(said)} if caught else {}
        return [TopPair(s, d, m, int(n), released.get((s, d), 0)) for s, d, m, n in caught]

    def events(
        self,
        *,
        before: int | None = None,
        limit: int = 50,
        action: Action | None = None,
        domain: str | None = None,
    ) -> list[EventRecord]:
        """Newest events first; ``before`` is the smallest id of the previous page."""
        query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
        if before is not None:
            query = query.where(EventRow.id < before)
        if action is not None:
            query = query.where(EventRow.action == action.value)
        if domain is not None:
            query = query.where(EventRow.domain == domain)
        with Session(self.engine) as session:
            return [_event(row) for row in session.scalars(query)]

    def correspondents(self, sender: str = "*", limit: int = 100) -> list[Correspondent]:
        """The relationships of ``sender`` (``*``: the organisation; an address or domain
        however it is spelled), most evidence first: mail sent, received and released (a
        domain known only from a release or a reply must not sort last)."""
        evidence = CorrespondentRow.count + CorrespondentRow.received + CorrespondentRow.released
        query = (
            select(*_CORRESPONDENT)
            .where(CorrespondentRow.sender == party_name(sender))
            .order_by(evidence.desc(), CorrespondentRow.recipient_domain)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_correspondent(*row) for row in connection.execute(query)]

    def relationships(self, since: datetime | None = None) -> list[Correspondent]:
        """Every relationship at every level (seen after ``since``, when given): what a
        running Guard loads at start, and then reads again as it changes."""
        # Plain rows, not ORM objects: a start reads every relationship, and the ORM's
        # bookkeeping of each row took a third of the start.
        query = select(*_CORRESPONDENT)
        if since is not None:
            query = query.where(CorrespondentRow.last_seen > since)
        with self.engine.connect() as connection:
            return [_correspondent(*row) for row in connection.execute(query)]

    def keep_learned(self, key: str, as_of: datetime, learned: str) -> bool:
        """Keep what a start learned from the relationships as of ``as_of`` (JSON), for
        the next start whose code, configuration, lists and rules give the same ``key``;
        the one kept before goes. False when another start kept one under the same key
        meanwhile (several gateways starting at once on one database): that one stays."""
        try:
            with self.engine.begin() as connection:
                connection.execute(delete(LearnedSetRow))
                connection.execute(
                    insert(LearnedSetRow).values(key=key, as_of=as_of, learned=learned)
                )
        except IntegrityError:
            return False
        return True

    def kept_learned(self, key: str) -> tuple[str, datetime, str] | None:
        """What :meth:`keep_learned` kept, under ``key`` if there is one: its key, as of
        when, and the JSON."""
        query = (
            select(LearnedSetRow.key, LearnedSetRow.as_of, LearnedSetRow.learned)
            .order_by((LearnedSetRow.key == key).desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else (row[0], utc(row[1]), row[2])

    def correspondent_counts(self, sender: str = "*") -> dict[str, int]:
        """Deliveries per recipient domain (``*``: the whole organisation)."""
        query = select(CorrespondentRow.recipient_domain, CorrespondentRow.count).where(
            CorrespondentRow.sender == party_name(sender)
        )
        with Session(self.engine) as session:
            return {domain: count for domain, count in session.execute(query)}

    def learn(
        self,
        counts: dict[tuple[str, str], int],
        seen: datetime | None = None,
        evidence: Evidence = Evidence.SENT,
    ) -> None:
        """Add evidence to the relationships: ``{(our party, outside domain): count}`` of
        deliveries (or of messages received, or of releases)."""
        when = seen or datetime.now(UTC)
        EventWriter(self.engine).learn(_tallies({evidence: counts}), when, when)

    def learn_logs(
        self,
        sent: dict[tuple[str, str], int],
        received: dict[tuple[str, str], int],
        logs: Sequence[tuple[str, int, str]],
        read_from: Mapping[str, int],
    ) -> None:
        """What one ``typogate learn`` found in ``logs``: deliveries and messages received,
        ``{(our party, outside domain): count}``, and how far each log was read, ``(log,
        bytes learned, path)``; in one transaction, so that a run is learned whole or not
        at all. Raises :class:`LearnedMeanwhile` (and learns nothing) when a log is no
        longer where ``read_from`` (:meth:`learned_logs`, as the run began) had it."""
        when = datetime.now(UTC)
        tallies = _tallies({Evidence.SENT: sent, Evidence.RECEIVED: received})
        EventWriter(self.engine).learn(tallies, when, when, then=_read_to(logs, read_from, when))

    def relationships_adding(self, sent: dict[tuple[str, str], int]) -> list[Correspondent]:
        """Every relationship as it will be once the deliveries ``sent`` are learned, with
        nothing written: what ``typogate learn`` weighs its replies with before it writes
        the run at once (:meth:`learn_logs`)."""
        now = datetime.now(UTC)
        found = {(c.sender, c.recipient_domain): c for c in self.relationships()}
        for key, count in sent.items():
            known = found.get(key)
            found[key] = (
                Correspondent(*key, count, now, now)
                if known is None
                else replace(known, count=known.count + count, last_seen=now)
            )
        return list(found.values())

    def judged_since(self) -> date | None:
        """The first day (UTC) a gateway judged mail into this store: from then on it learned
        from the mail it passed, which a log of those days shows again."""
        with self.engine.connect() as connection:
            day = connection.execute(select(func.min(IncidentRow.day))).scalar()
        return None if day is None else date.fromisoformat(day)

    def learned_logs(self) -> dict[str, int]:
        """How far each log was learned: its name (the digest of its first line) -> the
        bytes of its text learned, or -1 when it was read to its end."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(LearnedLogRow.log, LearnedLogRow.learned))
            return {log: learned for log, learned in rows}

    def keep_refusals(self, refusals: Sequence[LearnRefusal], judged: Sequence[str]) -> None:
        """Keep what a ``typogate learn`` refused, in place of what earlier runs said of the
        domains it ``judged`` (refused or not); what they said of others stays."""
        with self.engine.begin() as connection:
            for start in range(0, len(judged), _PER_STATEMENT):
                domains = judged[start : start + _PER_STATEMENT]
                connection.execute(
                    delete(LearnRefusalRow).where(LearnRefusalRow.domain.in_(domains))
                )
            if refusals:
                connection.execute(
                    insert(LearnRefusalRow),
                    [
                        {
                            "domain": r.domain,
                            "sender": r.sender,
                            "deliveries": r.deliveries,
                            "suggestion": r.suggestion,
                            "why": r.why,
                            "time": r.time,
                        }
                        for r in refusals
                    ],
                )

    def learn_refusals(self, limit: int = 1000) -> list[LearnRefusal]:
        """What ``typogate learn`` refused, by domain and sender (each domain as the latest
        run that judged it found it), the senders who wrote there most first."""
        query = (
            select(*_REFUSAL)
            .order_by(LearnRefusalRow.deliveries.desc(), LearnRefusalRow.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                LearnRefusal(d, s, n, suggestion, why, utc(t))
                for d, s, n, suggestion, why, t in connection.execute(query)
            ]

    def event_count(self) -> int:
        """How many verdict events are kept as rows."""
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(EventRow)) or 0

    def verdicts_by_action(self) -> dict[Action, int]:
        """Every verdict recorded, by action."""
        query = select(IncidentRow.action, func.sum(IncidentRow.count)).group_by(IncidentRow.action)
        with Session(self.engine) as session:
            return {Action(action): int(n) for action, n in session.execute(query)}


# The columns of a Correspondent, in its order.
_CORRESPONDENT = (
    CorrespondentRow.sender,
    CorrespondentRow.recipient_domain,
    CorrespondentRow.count,
    CorrespondentRow.first_seen,
    CorrespondentRow.last_seen,
    CorrespondentRow.received,
    CorrespondentRow.released,
)


_REFUSAL = (
    LearnRefusalRow.domain,
    LearnRefusalRow.sender,
    LearnRefusalRow.deliveries,
    LearnRefusalRow.suggestion,
    LearnRefusalRow.why,
    LearnRefusalRow.time,
)


def _tallies(
    evidence: Mapping[Evidence, dict[tuple[str, str], int]],
) -> dict[tuple[str, str], Tally]:
    """``{(our party, outside domain): [deliveries, received, released]}`` of counts by
    kind of evidence."""
    tallies: dict[tuple[str, str], Tally] = {}
    for kind, counts in evidence.items():
        for key, count in counts.items():
            tallies.setdefault(key, [0, 0, 0])[TALLY_COLUMN[kind]] += count
    return tallies


def _read_to(
    logs: Sequence[tuple[str, int, str]], read_from: Mapping[str, int], when: datetime
) -> Callable[[Connection], None]:
    """What records how far ``logs`` were read, in a transaction's ``connection``: each
    only where it still is as ``read_from`` had it, and a log new to the store only if no
    other run stored it meanwhile; else :class:`LearnedMeanwhile`, and the transaction
    is undone."""

    def record(connection: Connection) -> None:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        for log, learned, path in logs:
            row = {"learned": learned, "path": path, "time": when}
            if log in read_from:
                write = (
                    update(LearnedLogRow)
                    .where(LearnedLogRow.log == log, LearnedLogRow.learned == read_from[log])
                    .values(**row)
                )
            else:
                write = dialect.insert(LearnedLogRow).values(log=log, **row)
                write = write.on_conflict_do_nothing()
            # RETURNING, not rowcount: on PostgreSQL the insert's rowcount read -1 here.
            if connection.execute(write.returning(LearnedLogRow.log)).first() is None:
                raise LearnedMeanwhile()

    return record


def _correspondent(
    sender: str,
    domain: str,
    count: int,
    first: datetime,
    last: datetime,
    received: int,
    released: int,
) -> Correspondent:
    return Correspondent(sender, domain, count, utc(first), utc(last), received, released)


def _event(row: EventRow) -> EventRecord:
    return EventRecord(
        id=row.id,
        time=utc(row.time),
        recipient=row.recipient,
        domain=row.domain,
        action=Action(row.action),
        reason=row.reason,
        suggestion=row.suggestion,
        score=row.score,
        rule=row.rule,
        sender=row.sender,
        adapter=row.adapter,
        mode=Mode(row.mode),
        queue_id=row.queue_id,
    )
