"""The sink's metadata in the store: what it answered (written in batches, kept for a
retention limit), the reports summed from it per intended domain, and the reports sent.

Every sink instance only inserts rows and deletes expired ones, so several instances can
share one PostgreSQL: nothing is counted in memory that another instance would need.
:meth:`SinkLog.record` returns at once; a thread writes what was recorded every
``batch_seconds``, so an SMTP answer never waits for the database.

Each hour keeps at most so many records, in all and from one client range
(:class:`RecordBudget`): the answers go on past them, unrecorded, so a client that sends
recipient after recipient cannot fill the store's disk or crowd out the others' records.
"""

from __future__ import annotations

import logging
import textwrap
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from typogate.domains import printable_form
from typogate.store.engine import Outage, insert_each, refusals, write_errors
from typogate.store.models import SinkRecordRow, SinkReportRow

log = logging.getLogger(__name__)

_MAX_QUEUED = 100_000  # records waiting for the writer (also while the database is down)
_PURGE_SECONDS = 3600.0  # expired records are deleted this often (and at start)
# A report left "sending" this long (its instance died mid-way) may be sent again.
_STALE_SENDING = timedelta(hours=1)
REPORT_VERSION = 1  # of the report's JSON (docs/sink.md)
_TOP = 5  # lines per list in a report's summary (its JSON has them all)
_HOUR = timedelta(hours=1)


class SinkOutcome(StrEnum):
    """What the sink answered for one recipient."""

    HINT = "hint"  # refused, 5.1.2, with the address the sender meant
    UNKNOWN = "unknown"  # refused, 5.1.1: not a likely typo of anything served
    FORWARDED = "forwarded"  # passed on to the registrant's own mail server
    NOT_FORWARDED = "not_forwarded"  # the registrant's server refused or was unreachable
    NOT_SERVED = "not_served"  # refused, 5.7.1: a domain this sink does not answer for
    INVALID = "invalid"  # refused, 5.1.3: an address that cannot be read


class ReportState(StrEnum):
    """Where a daily report stands."""

    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """The metadata of one answered recipient (the columns of ``sink_records``)."""

    time: datetime
    client_address: str
    client_range: str
    helo: str
    sender_domain: str
    local_hash: str
    recipient: str | None
    lookalike: str
    intended: str
    outcome: SinkOutcome
    reply: str


@dataclass(frozen=True, slots=True)
class SinkDay:
    """Recipients the sink answered on one day (UTC), by outcome."""

    day: str
    hint: int = 0
    unknown: int = 0
    forwarded: int = 0
    other: int = 0


@dataclass(frozen=True, slots=True)
class TopLookalike:
    lookalike: str
    intended: str
    count: int


@dataclass(frozen=True, slots=True)
class TopSenderDomain:
    sender_domain: str
    count: int
    lookalikes: int


@dataclass(frozen=True, slots=True)
class SinkCount:
    """Messages to one intended domain on one day, from one look-alike, sending domain and
    client address range: the cells a daily report is summed from."""

    intended: str
    day: str
    lookalike: str
    sender_domain: str
    client_range: str
    messages: int


@dataclass(frozen=True, slots=True)
class SentReport:
    """A daily report as the store keeps it."""

    intended: str
    day: str
    contact: str
    messages: int
    state: ReportState
    detail: str
    time: datetime


class RecordBudget:
    """How many records one hour (UTC, per instance) keeps: ``per_hour`` in all and
    ``per_client`` from one client range (/24, /48). Past either, a record is left out,
    counted, and said once in the log; what an hour left out is logged with the first
    record after it."""

    def __init__(self, per_hour: int, per_client: int) -> None:
        self.per_hour = per_hour
        self.per_client = per_client
        self._hour: datetime | None = None
        self._kept = 0
        # At most per_hour ranges: a range enters only with a record kept.
        self._per_range: Counter[str] = Counter()
        self._ranges_told: set[str] = set()
        self._all_told = False
        self._left_out = 0

    def allows(self, record: SinkRecord) -> bool:
        """True when ``record`` is within this hour's budgets (and is counted in them)."""
        hour = record.time.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if hour != self._hour:
            self._end_hour()
            self._hour = hour
        client = record.client_range
        if self._kept >= self.per_hour:
            if not self._all_told:
                self._all_told = True
                log.warning(
                    "sink: %d records this hour in all; answers go on, unrecorded until %s",
                    self.per_hour,
                    f"{hour + _HOUR:%H:%M} UTC",
                )
        elif self._per_range[client] >= self.per_client:
            if client not in self._ranges_told:
                self._ranges_told.add(client)
                log.warning(
                    "sink: %s reached its %d records this hour; its answers go on, unrecorded",
                    client,
                    self.per_client,
                )
        else:
            self._kept += 1
            self._per_range[client] += 1
            return True
        self._left_out += 1
        return False

    def _end_hour(self) -> None:
        if self._left_out:
            log.warning(
                "sink: the hour from %s left %d answers unrecorded (budgets: %d records in "
                "all, %d per client range)",
                f"{self._hour:%Y-%m-%d %H:%M} UTC",
                self._left_out,
                self.per_hour,
                self.per_client,
            )
        self._kept = self._left_out = 0
        self._per_range.clear()
        self._ranges_told.clear()
        self._all_told = False


_RECORD_FIELDS = tuple(f.name for f in fields(SinkRecord))  # time first
_OUTCOME = _RECORD_FIELDS.index("outcome")


class SinkLog:
    """Records the sink's answers in batches from a thread of its own, within ``budget``
    when there is one, and deletes records older than ``retention_days`` (at start, then
    hourly)."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_seconds: float = 1.0,
        retention_days: int = 90,
        budget: RecordBudget | None = None,
    ) -> None:
        self.engine = engine
        self.batch_seconds = batch_seconds
        self.retention_days = retention_days
        self.budget = budget
        self._queue: deque[SinkRecord] = deque()  # appends and pops are atomic
        self._pending: list[tuple[Any, ...]] = []  # taken, not yet written (database down)
        # The driver's own executemany over plain tuples, as the store's writer does: the
        # ORM's per-row work held the interpreter ~0.1 ms a record, long enough to delay
        # the SMTP answers waiting on the same process.
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_errors = write_errors(engine)
        self._refusals = refusals(engine)
        self._outage = Outage("sink", "record")
        marker = "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"
        columns = ", ".join(["day", *_RECORD_FIELDS])
        markers = ", ".join([marker] * (1 + len(_RECORD_FIELDS)))
        self._insert = f"INSERT INTO sink_records ({columns}) VALUES ({markers})"
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0

    def start(self) -> SinkLog:
        """Start the writer thread (after a first purge of expired records)."""
        self.purge()
        self._thread = threading.Thread(target=self._run, name="sink-log", daemon=True)
        self._thread.start()
        return self

    def record(self, record: SinkRecord) -> None:
        """Queue one record; returns at once and never raises. Past the budget it is left
        out; past _MAX_QUEUED waiting records (a database down for long), new ones are
        dropped and counted."""
        if self.budget is not None and not self.budget.allows(record):
            return
        if len(self._queue) + len(self._pending) >= _MAX_QUEUED:
            self.dropped += 1
            return
        self._queue.append(record)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued now; True when nothing is left waiting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._idle.clear()
            self._hurry.set()
            self._idle.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            if not self._queue and not self._pending:
                return True
        return False

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        if self._thread is not None:
            self._stop.set()
            self._hurry.set()
            self._thread.join(timeout=30)
        if self._queue or self._pending:
            log.error("sink: %d records not written", len(self._queue) + len(self._pending))

    def purge(self, now: datetime | None = None) -> int:
        """Delete records and report entries older than the retention limit; how many
        records went. Several instances may purge at once: each deletes what is left."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        try:
            with self.engine.begin() as connection:
                gone = connection.execute(
                    delete(SinkRecordRow).where(SinkRecordRow.time < cutoff)
                ).rowcount
                connection.execute(delete(SinkReportRow).where(SinkReportRow.time < cutoff))
        except SQLAlchemyError as error:
            log.error("sink: cannot delete expired records (will retry): %s", error)
            return 0
        if gone:
            log.info("sink: %d records older than %d days deleted", gone, self.retention_days)
        return int(gone)

    def _run(self) -> None:
        purged_at = time.monotonic()
        while True:
            self._hurry.wait(self.batch_seconds)
            self._hurry.clear()
            stopping = self._stop.is_set()
            self._write()
            if time.monotonic() - purged_at >= _PURGE_SECONDS:
                self.purge()
                purged_at = time.monotonic()
            self._idle.set()
            if stopping:
                return

    def _write(self) -> None:
        taken = [self._queue.popleft() for _ in range(len(self._queue))]
        self._pending.extend(self._row(record) for record in taken)
        if not self._pending:
            return
        try:
            self._insert_rows(self._pending)
        except self._refusals:
            self._write_each()
            return
        except self._write_errors as error:
            self._outage.failed(len(self._pending), error)
            return
        self._outage.ended()
        self.written += len(self._pending)
        self._pending = []

    def _write_each(self) -> None:
        """The database refused a value in the batch: each record alone, so that one it
        refuses costs only itself (left out, logged and counted as dropped); should the
        database go down meanwhile, the records not written wait for the next round."""
        pending = self._pending
        left_out, self._pending = insert_each(
            pending, lambda row: self._insert_rows([row]), self.engine, self._outage
        )
        self.dropped += left_out
        self.written += len(pending) - left_out - len(self._pending)
        if not self._pending:
            self._outage.ended()

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        with self.engine.begin() as connection:
            cursor: Any = connection.connection.cursor()
            cursor.executemany(self._insert, rows)
            cursor.close()

    def _row(self, record: SinkRecord) -> tuple[Any, ...]:
        when = record.time.astimezone(UTC)
        # SQLite keeps times as text, in the form SQLAlchemy reads back; PostgreSQL as such.
        stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f") if self._sqlite else when
        rest = [getattr(record, name) for name in _RECORD_FIELDS[1:]]
        rest[_OUTCOME - 1] = record.outcome.value  # a plain str for the drivers
        return (when.date().isoformat(), stamp, *rest)


class SinkHistory:
    """Read-only views of the sink's records for reports, the dashboard and the API."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def by_day(self, days: int = 30) -> list[SinkDay]:
        """One entry per day of the last ``days`` days (UTC), oldest first, zeros included."""
        first = datetime.now(UTC).date() - timedelta(days=days - 1)
        query = (
            select(SinkRecordRow.day, SinkRecordRow.outcome, func.count())
            .where(SinkRecordRow.day >= first.isoformat())
            .group_by(SinkRecordRow.day, SinkRecordRow.outcome)
        )
        counts: dict[str, dict[str, int]] = {}
        with self.engine.connect() as connection:
            for day, outcome, count in connection.execute(query):
                kind = outcome if outcome in ("hint", "unknown", "forwarded") else "other"
                row = counts.setdefault(day, {})
                row[kind] = row.get(kind, 0) + int(count)
        every = ((first + timedelta(days=n)).isoformat() for n in range(days))
        return [SinkDay(day, **counts.get(day, {})) for day in every]

    def top_lookalikes(self, days: int = 30, limit: int = 10) -> list[TopLookalike]:
        """The look-alike domains that drew most misdirected mail (meant for a served
        organisation) in the last ``days`` days."""
        total = func.count()
        query = (
            select(SinkRecordRow.lookalike, SinkRecordRow.intended, total)
            .where(SinkRecordRow.day >= _first_day(days), SinkRecordRow.intended != "")
            .group_by(SinkRecordRow.lookalike, SinkRecordRow.intended)
            .order_by(total.desc(), SinkRecordRow.lookalike)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [TopLookalike(a, b, int(n)) for a, b, n in connection.execute(query)]

    def top_sender_domains(self, days: int = 30, limit: int = 10) -> list[TopSenderDomain]:
        """The sending domains whose users slipped most often in the last ``days`` days."""
        total = func.count()
        query = (
            select(
                SinkRecordRow.sender_domain,
                total,
                func.count(func.distinct(SinkRecordRow.lookalike)),
            )
            .where(SinkRecordRow.day >= _first_day(days), SinkRecordRow.intended != "")
            .group_by(SinkRecordRow.sender_domain)
            .order_by(total.desc(), SinkRecordRow.sender_domain)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [TopSenderDomain(d, int(n), int(k)) for d, n, k in connection.execute(query)]

    def counts(self, since: date, until: date) -> list[SinkCount]:
        """Misdirected messages from ``since`` to ``until`` (inclusive, UTC days) per intended
        domain, day, look-alike, sending domain and client address range."""
        r = SinkRecordRow
        keys = (r.intended, r.day, r.lookalike, r.sender_domain, r.client_range)
        query = (
            select(*keys, func.count())
            .where(r.day >= since.isoformat(), r.day <= until.isoformat(), r.intended != "")
            .group_by(*keys)
            .order_by(*keys)
        )
        with self.engine.connect() as connection:
            return [SinkCount(*row[:5], messages=int(row[5])) for row in connection.execute(query)]

    def recipients(self, since: date, until: date) -> dict[str, int]:
        """Distinct recipients (by their keyed hash) per intended domain in those days."""
        r = SinkRecordRow
        query = (
            select(r.intended, func.count(func.distinct(r.local_hash)))
            .where(r.day >= since.isoformat(), r.day <= until.isoformat(), r.intended != "")
            .group_by(r.intended)
        )
        with self.engine.connect() as connection:
            return {intended: int(n) for intended, n in connection.execute(query)}

    def intended_reports(
        self, since: date, until: date, key: Callable[[str], str | None] = lambda name: name
    ) -> list[IntendedReport]:
        """The reports of misdirected mail from ``since`` to ``until`` (UTC days), one per
        ``key(intended domain)`` (by default per intended domain), largest first."""
        return build(self.counts(since, until), self.recipients(since, until), since, until, key)

    def reports(self, limit: int = 50) -> list[SentReport]:
        """The daily reports, newest first."""
        r = SinkReportRow
        query = select(r).order_by(r.time.desc(), r.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [
                SentReport(
                    row.intended,
                    row.day,
                    row.contact,
                    row.messages,
                    ReportState(row.state),
                    row.detail,
                    row.time,
                )
                for row in connection.execute(query)
            ]

    def claim_report(self, intended: str, day: str, contact: str, messages: int) -> bool:
        """Take the sending of one daily report: True for the one instance that should send
        it now (none sent it yet, or an earlier try failed or was left half-way)."""
        r = SinkReportRow
        now = datetime.now(UTC)
        values = {"contact": contact, "messages": messages, "state": ReportState.SENDING}
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(r).values(intended=intended, day=day, time=now, detail="", **values)
                )
            return True
        except IntegrityError:
            pass
        retry = (r.state == ReportState.FAILED) | (
            (r.state == ReportState.SENDING) & (r.time < now - _STALE_SENDING)
        )
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(r)
                .where(r.intended == intended, r.day == day, retry)
                .values(time=now, detail="", **values)
            ).rowcount
        return bool(taken)

    def finish_report(self, intended: str, day: str, state: ReportState, detail: str) -> None:
        """Note how the sending of a claimed report ended."""
        r = SinkReportRow
        with self.engine.begin() as connection:
            connection.execute(
                update(r)
                .where(r.intended == intended, r.day == day)
                .values(state=state, detail=detail, time=datetime.now(UTC))
            )


def _first_day(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days - 1)).isoformat()


@dataclass
class IntendedReport:
    """Misdirected mail meant for one domain in one period (UTC days, inclusive)."""

    intended: str
    since: str
    until: str
    messages: int = 0
    recipients: int = 0
    by_day: Counter[str] = field(default_factory=Counter)
    by_lookalike: Counter[str] = field(default_factory=Counter)
    by_sender_domain: Counter[str] = field(default_factory=Counter)
    by_client_range: Counter[str] = field(default_factory=Counter)

    def to_json(self, reporter: str) -> dict[str, Any]:
        """The machine-readable report (documented in docs/sink.md)."""

        def listed(counter: Counter[str], key: str) -> list[dict[str, Any]]:
            return [{key: name, "messages": n} for name, n in _ranked(counter)]

        return {
            "report": {
                "type": "typogate-sink",
                "version": REPORT_VERSION,
                "reporter": reporter,
                "intended": self.intended,
                "since": self.since,
                "until": self.until,
            },
            "messages": self.messages,
            "recipients": self.recipients,
            "by_day": [{"day": d, "messages": self.by_day[d]} for d in sorted(self.by_day)],
            "by_lookalike": listed(self.by_lookalike, "lookalike"),
            "by_sender_domain": listed(self.by_sender_domain, "sender_domain"),
            "by_client_range": listed(self.by_client_range, "client_range"),
        }

    def summary(self, reporter: str) -> str:
        """A short plain-text account for the people of the intended organisation."""
        period = self.since if self.since == self.until else f"{self.since} to {self.until}"
        lines = [
            textwrap.fill(
                f"Mail meant for {self.intended} that was sent to look-alike domains, "
                f"{period} (UTC).",
                72,
            ),
            "",
            textwrap.fill(
                f"{self.messages} message(s) to {self.recipients} different recipient(s) were "
                f"refused by the sink at {reporter}, before any content was sent. Each sender "
                f"was told the address they meant; nothing was delivered or kept.",
                72,
            ),
            "",
        ]
        for title, counter in (
            ("Look-alike domains", self.by_lookalike),
            (
                "Sending domains (whose users should check their address books)",
                self.by_sender_domain,
            ),
            ("Sending networks", self.by_client_range),
        ):
            lines.append(f"{title}:")
            ranked = _ranked(counter)
            # A stranger's MAIL FROM, shown to people: its escapes, never its controls.
            lines += [
                f"  {n:>6}  {printable_form(name) if name else '(bounce: no sender)'}"
                for name, n in ranked[:_TOP]
            ]
            if len(ranked) > _TOP:
                lines.append(f"  and {len(ranked) - _TOP} more (see the JSON attachment)")
            lines.append("")
        lines.append("The attached JSON holds the same figures for machines.")
        return "\n".join(lines) + "\n"


def _ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def build(
    counts: Iterable[SinkCount],
    recipients: dict[str, int],
    since: date,
    until: date,
    key: Callable[[str], str | None] = lambda intended: intended,
) -> list[IntendedReport]:
    """Sum the store's counts into one report per ``key(intended)`` (by default each
    intended domain; ``None`` leaves a domain out), largest first."""
    reports: dict[str, IntendedReport] = {}
    for count in counts:
        name = key(count.intended)
        if name is None:
            continue
        report = reports.get(name)
        if report is None:
            report = reports[name] = IntendedReport(name, since.isoformat(), until.isoformat())
        report.messages += count.messages
        report.by_day[count.day] += count.messages
        report.by_lookalike[count.lookalike] += count.messages
        report.by_sender_domain[count.sender_domain] += count.messages
        report.by_client_range[count.client_range] += count.messages
    for intended, n in recipients.items():
        name = key(intended)
        if name is not None and name in reports:
            reports[name].recipients += n
    return sorted(reports.values(), key=lambda r: (-r.messages, r.intended))
