"""Recording verdicts without slowing them: the batched writer.

:meth:`Recorder.record` queues an event as a plain row and returns (about a microsecond); a
feeder thread hands what is queued to a writer process every second, which batches, counts
and writes it. Alerts (warn, hold, reject) are kept as event rows. Allowed verdicts are
counted per day (the dashboard's totals), not kept; ``keep_allowed=True``
(``store.keep_allowed``) keeps them all. :meth:`Recorder.observe` queues evidence of a
relationship (a delivery from a sender the gateway believes, mail received, a release),
which the writer adds up at three levels (sender address, sender domain, the whole
organisation ``*``) and writes every ten seconds. That keeps the organisation's address
book of recipients out of the event rows and the writer's work small.
When the database is dead, events are kept in a bounded queue and retried, then dropped
and counted: mail is decided from memory and the loss is logged, never a failed verdict.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import Connection as DatabaseConnection
from sqlalchemy import Engine

from typogate.policy.relationships import levels, party_name
from typogate.store.engine import Outage, insert_each, make_engine, refusals, write_errors
from typogate.store.journal import VerdictEvent
from typogate.vocabulary import Action, Evidence

log = logging.getLogger(__name__)

_MAX_QUEUED = 200_000  # events waiting for the writer; past this, record() drops
_MAX_PENDING = 20_000  # events taken per write, and kept for a retry while the database is down
# Allowed deliveries become counts per batch, and counts per correspondent per
# _LEARN_SECONDS: the writer's work grows with distinct correspondents, not with mail.
_WRITE_SECONDS = 1.0
_LEARN_SECONDS = 10.0  # correspondents: a counter update per correspondent this often
_IDLE_SECONDS = 3.0  # or sooner, once no batch came for a few batch intervals
_HURRY = "hurry"  # feeder -> writer: write everything now, correspondents too (flush)
_MAX_LESSONS = 500_000  # correspondent counts kept for a retry while the database is down
# After SIGTERM the writer still takes what the gateway's process hands over for this long
# (see _writer_main): enough for Store.close(), bounded so that no exit waits for ever.
_STOP_GRACE = 10.0


class Recorder:
    """Takes verdict events from the gateway's threads and has a writer process store them.

    ``keep_allowed``: keep a row for every allowed verdict too (by default those are only
    counted, see the module).
    """

    def __init__(self, url: str, *, keep_allowed: bool = False) -> None:
        self.url = url
        self.keep_allowed = keep_allowed
        # record() and observe() append plain values here (a deque append is atomic): the
        # time of an allowed verdict that is only counted, other events whole, evidence as
        # (time, party, domain, kind). A feeder thread hands them to the writer process every
        # _WRITE_SECONDS; counting and the database work run there, so the gateway's process
        # spends about a µs per event.
        self._counted: deque[_Counted] = deque()
        self._kept: deque[tuple[Any, ...]] = deque()
        self._observed: deque[_Observed] = deque()
        self._in_flight = 0
        self.written = 0
        self.dropped = 0
        self._spawn_writer()
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._feeder = threading.Thread(target=self._feed, name="store-feeder", daemon=True)
        self._feeder.start()

    def _spawn_writer(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_writer_main,
            args=(self.url, child),
            name="typogate-store",
            daemon=True,
        )
        # Starting a process may start multiprocessing's resource tracker, which unblocks
        # SIGINT/SIGTERM in this thread; keep the caller's signal mask (typogate serve leaves
        # those signals to libmilter's thread) for this thread and the feeder below.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        self._process.start()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        child.close()  # the writer's end: once the writer is gone, sending here fails at once

    def record(self, event: VerdictEvent) -> None:
        """Queue one verdict event; returns at once, never raises."""
        if len(self._counted) + len(self._kept) >= _MAX_QUEUED:
            self.dropped += 1
            return
        # Plain tuples pickle for the writer ten times faster than the named tuple, and the
        # garbage collector stops tracking them while they wait.
        stamp = time.time() if event.time is None else event.time
        if event.action == _ALLOW and not self.keep_allowed:
            self._counted.append(stamp)
        else:
            self._kept.append((*event[:-1], stamp))

    def observe(self, party: str, domain: str, evidence: Evidence) -> None:
        """Queue evidence of a relationship (mail ``party`` sent to ``domain`` or received
        from it, a release); returns at once, never raises."""
        if len(self._observed) >= _MAX_QUEUED:
            self.dropped += 1
            return
        self._observed.append((time.time(), party, domain, evidence.value))

    @property
    def queued(self) -> int:
        """Events recorded but not yet written."""
        return len(self._counted) + len(self._kept) + len(self._observed) + self._in_flight

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued event is written (or dropped)."""
        deadline = time.monotonic() + timeout
        self._hurry.set()
        while self.queued and time.monotonic() < deadline:
            if self.queued > self._in_flight:
                self._hurry.set()
            time.sleep(0.01)

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        self.flush()
        self._stop.set()
        self._hurry.set()
        self._feeder.join(timeout=10)
        with contextlib.suppress(OSError):  # the writer is gone already (the feeder said so)
            self._pipe.send(None)
        self._process.join(timeout=30)
        if self._process.is_alive():
            log.error("store: writer process %d did not stop; killed", self._process.pid)
            self._process.kill()

    def _feed(self) -> None:
        while True:
            hurried = self._hurry.wait(_WRITE_SECONDS)
            self._hurry.clear()
            stopping = self._stop.is_set()
            if not self._process.is_alive():  # found before this round's events are sent
                self._writer_lost(restart=not stopping)
            counted = [self._counted.popleft() for _ in range(len(self._counted))]
            kept = [self._kept.popleft() for _ in range(len(self._kept))]
            observed = [self._observed.popleft() for _ in range(len(self._observed))]
            try:
                if counted or kept or observed:
                    self._in_flight += len(counted) + len(kept) + len(observed)
                    self._pipe.send((counted, kept, observed))
                if hurried and self._in_flight:
                    self._pipe.send(_HURRY)
                while self._pipe.poll():
                    written, dropped = self._pipe.recv()
                    self.written += written
                    self.dropped += dropped
                    self._in_flight -= written + dropped
            except (OSError, EOFError):
                self._writer_lost(restart=not stopping)
            if stopping and not (self._counted or self._kept or self._observed):
                return

    def _writer_lost(self, *, restart: bool) -> None:
        """The writer process died (killed, out of memory): what it held is lost and
        counted; verdicts go on, and a new writer takes the events recorded from now on."""
        self._process.join(timeout=5)
        log.error(
            "store: writer process %d stopped (exit code %s); %d verdict events lost%s",
            self._process.pid,
            self._process.exitcode,
            self._in_flight,
            ", starting a new one" if restart else "",
        )
        self.dropped += self._in_flight
        self._in_flight = 0
        if restart:
            self._spawn_writer()


_ADD_COUNT = (
    "ON CONFLICT (sender, recipient_domain) DO UPDATE "
    "SET count = correspondents.count + excluded.count, "
    "received = correspondents.received + excluded.received, "
    "released = correspondents.released + excluded.released, last_seen = excluded.last_seen"
)
_ALLOW = Action.ALLOW.value  # events carry the plain value (they are pickled by the million)
_Counted = float  # an allowed verdict that is only counted: its time
# Evidence other than deliveries: (time, our party, outside domain, kind).
_Observed = tuple[float, str, str, str]
# The evidence of one relationship, in the columns' order: deliveries, received, released.
Tally = list[int]
TALLY_COLUMN = {Evidence.SENT: 0, Evidence.RECEIVED: 1, Evidence.RELEASED: 2}
# Where a kept event's fields sit in its row (VerdictEvent's order; time last).
_DOMAIN, _ACTION, _SENDER, _SUGGESTION = (
    VerdictEvent._fields.index(name) for name in ("domain", "action", "sender", "suggestion")
)


@dataclass(slots=True)
class _Batch:
    """What the writer writes at once: kept events as rows (alerts, and allowed verdicts
    with ``store.keep_allowed``), allowed verdicts as counts per UTC day, and the evidence of
    relationships observed."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    allowed: dict[str, int] = field(default_factory=dict)
    observed: dict[tuple[str, str, str], int] = field(default_factory=dict)
    events: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(
        self, counted: list[_Counted], kept: list[tuple[Any, ...]], observed: list[_Observed]
    ) -> None:
        """Take in what :meth:`Recorder.record` and :meth:`Recorder.observe` queued: allowed
        verdicts to count, events to keep (the fields of a VerdictEvent, time last), and
        evidence of relationships."""
        stamps = [*counted, *(row[-1] for row in kept)]
        stamps += [row[0] for row in observed]
        if not stamps:
            return
        first = datetime.fromtimestamp(min(stamps), UTC)
        last = datetime.fromtimestamp(max(stamps), UTC)
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)
        self.events += len(stamps)
        days: dict[int, str] = {}

        def count(stamp: float) -> None:
            number = int(stamp // 86400)
            day = days.get(number)
            if day is None:
                day = days[number] = datetime.fromtimestamp(stamp, UTC).date().isoformat()
            self.allowed[day] = self.allowed.get(day, 0) + 1

        for stamp in counted:
            count(stamp)
        for row in kept:
            if row[_ACTION] == _ALLOW:
                count(row[-1])
            self.rows.append((*row[:-1], datetime.fromtimestamp(row[-1], UTC)))
        for _, party, domain, kind in observed:
            key = (party, domain, kind)
            self.observed[key] = self.observed.get(key, 0) + 1


class EventWriter:
    """The database side of recording: events, the daily incident counts, and the
    relationships that evidence teaches."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # PostgreSQL takes the events as one COPY stream and the correspondents as one
        # statement over arrays: a statement per row cost it ~5x the CPU (bench/store.py).
        self.postgres = engine.dialect.name == "postgresql"
        self.errors = write_errors(engine)
        self.refusals = refusals(engine)
        self.refused = 0  # events the database refused, left out, not yet reported
        self.outage = Outage("store", "event")
        marker = "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"
        fields = ", ".join(VerdictEvent._fields)
        markers = ", ".join([marker] * len(VerdictEvent._fields))
        self.insert_event = f"INSERT INTO events ({fields}) VALUES ({markers})"
        self.copy_events = f"COPY events ({fields}) FROM STDIN"
        # One statement, understood by SQLite (3.24+) and PostgreSQL alike.
        columns = "sender, recipient_domain, count, received, released, first_seen, last_seen"
        self.upsert_correspondent = (
            f"INSERT INTO correspondents ({columns}) "
            f"VALUES ({', '.join([marker] * 7)}) {_ADD_COUNT}"
        )
        self.upsert_correspondents_pg = (
            f"INSERT INTO correspondents ({columns}) "
            "SELECT sender, domain, sent, received, released, %s, %s "
            "FROM unnest(%s::text[], %s::text[], %s::integer[], %s::integer[], %s::integer[]) "
            "AS lesson(sender, domain, sent, received, released) "
            f"{_ADD_COUNT}"
        )
        self.upsert_incident = (
            "INSERT INTO incidents (day, action, domain, suggestion, sender, count) "
            f"VALUES ({', '.join([marker] * 6)}) "
            "ON CONFLICT (day, action, domain, suggestion, sender) DO UPDATE "
            "SET count = incidents.count + excluded.count"
        )

    def write(self, batch: _Batch) -> bool:
        """Write a batch's events and incident counts in one transaction; False if the
        database is down (the caller retries). When it refuses a value in the batch, the
        events are written one by one instead (:meth:`_write_each`)."""
        try:
            self._insert(batch.rows, batch.allowed)
        except self.refusals:
            return self._write_each(batch)
        except self.errors as error:
            self.outage.failed(batch.events, error)
            return False
        return True

    def _write_each(self, batch: _Batch) -> bool:
        """Each event alone, so that one the database refuses costs only itself (left out,
        logged, and counted in ``refused``); then the allowed verdicts' counts. What is
        written leaves ``batch``, so a retry after the database went down writes no event
        twice."""
        left_out, left = insert_each(
            batch.rows, lambda row: self._insert([row], {}), self.engine, self.outage
        )
        self.refused += left_out
        batch.events -= left_out
        batch.rows = left
        if left:
            return False
        try:
            self._insert([], batch.allowed)
        except self.errors as error:
            self.outage.failed(batch.events, error)
            return False
        return True

    def _insert(self, rows: list[tuple[Any, ...]], allowed: dict[str, int]) -> None:
        """Insert ``rows`` and add them, and ``allowed`` (verdicts per day), to the daily
        incident counts, in one transaction."""
        incidents: dict[tuple[str, str, str, str, str], int] = defaultdict(int)
        for day, count in allowed.items():
            incidents[(day, _ALLOW, "*", "", "*")] += count
        for row in rows:
            action = row[_ACTION]
            if action != _ALLOW:
                day = row[-1].date().isoformat()
                sender = party_name(row[_SENDER] or "")  # as her relationships name her
                incidents[(day, action, row[_DOMAIN], row[_SUGGESTION] or "", sender)] += 1
        with self.engine.begin() as connection:
            # The driver's own bulk paths (COPY, executemany): no per-row ORM work.
            cursor: Any = connection.connection.cursor()
            if rows and self.postgres:
                with cursor.copy(self.copy_events) as copy:
                    for row in rows:
                        copy.write_row(row)
            elif rows:
                cursor.executemany(self.insert_event, rows)
            cursor.executemany(self.upsert_incident, [(*key, n) for key, n in incidents.items()])
            cursor.close()

    def learn(
        self,
        tallies: dict[tuple[str, str], Tally],
        first: datetime,
        last: datetime,
        then: Callable[[DatabaseConnection], None] | None = None,
    ) -> None:
        """Add ``{(our party, outside domain): [deliveries, received, released]}`` to the
        relationships; ``then`` writes more in the same transaction (what they came from)."""
        with self.engine.begin() as connection:
            cursor = connection.connection.cursor()
            if self.postgres:
                senders, domains = [s for s, _ in tallies], [d for _, d in tallies]
                columns = [[tally[n] for tally in tallies.values()] for n in range(3)]
                cursor.execute(
                    self.upsert_correspondents_pg, (first, last, senders, domains, *columns)
                )
            else:
                # One time text for all rows: sqlite3 would convert the datetimes row by row.
                since, until = first.isoformat(" "), last.isoformat(" ")
                rows = [
                    (sender, domain, *tally, since, until)
                    for (sender, domain), tally in tallies.items()
                ]
                cursor.executemany(self.upsert_correspondent, rows)
            cursor.close()
            if then is not None:
                then(connection)


@dataclass(slots=True)
class _Lessons:
    """Relationships learned from the evidence observed, gathered over several batches: one
    counter update per relationship every _LEARN_SECONDS, however much mail went there."""

    counts: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(_tally))
    events: int = 0  # the events these lessons came from, reported once they are written
    first: datetime | None = None
    last: datetime | None = None

    def take(self, batch: _Batch) -> None:
        for (party, domain, kind), count in batch.observed.items():
            self._add(party, domain, TALLY_COLUMN[Evidence(kind)], count)
        self.events += batch.events
        if batch.first is not None and batch.last is not None:
            self.first = batch.first if self.first is None else min(self.first, batch.first)
            self.last = batch.last if self.last is None else max(self.last, batch.last)

    def _add(self, party: str | None, domain: str, column: int, count: int) -> None:
        """At three levels: the organisation, our party's domain and its address."""
        for level in levels(party):
            self.counts[(level, domain)][column] += count


def _tally() -> Tally:
    return [0, 0, 0]


def _writer_main(url: str, pipe: Connection) -> None:
    """The writer process: gathers the rows the gateway's process sends into a batch, writes
    its events and incident counts, and every _LEARN_SECONDS (or sooner: when no mail came
    for _IDLE_SECONDS, when flush() hurries it, at the end) what they taught about
    correspondents; then reports the events as written. While the database is down it
    retries, up to _MAX_PENDING events, then drops and counts."""
    # Recording can wait a moment, verdicts cannot: when the cores are busy, the gateway
    # gets them first (the writer's work is small and catches up in any lull).
    os.nice(5)
    # A stop signal for the whole process group (Ctrl-C in a terminal, systemd's default
    # KillMode=control-group) reaches the writer too, while the gateway's process still has
    # events to hand over: the writer stops when told to, or when that process is gone (its
    # pipe closes), and after SIGTERM within _STOP_GRACE seconds, so that multiprocessing's
    # exit handler (terminate, then join) cannot wait for ever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    grace_ends = math.inf

    def terminated(signum: int, frame: object) -> None:
        nonlocal grace_ends
        grace_ends = min(grace_ends, time.monotonic() + _STOP_GRACE)

    signal.signal(signal.SIGTERM, terminated)
    # A writer restarted by the feeder thread inherits that thread's mask, which blocks it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    engine = make_engine(url)
    writer = EventWriter(engine)
    pending = _Batch()
    lessons = _Lessons()
    learned_at = time.monotonic()
    running = True
    hurry = False
    while running or pending.events or lessons.events:
        # Never blocked for good: the loop must see the end of a SIGTERM's grace.
        wait = _WRITE_SECONDS if pending.events else _IDLE_SECONDS
        idle = True
        if time.monotonic() >= grace_ends:
            running = False
        elif pipe.poll(wait):
            idle = False
            try:
                message = pipe.recv()
            except (EOFError, OSError):  # the gateway's process is gone: write, then stop
                message = None
            if message is None:
                running = False
            elif message == _HURRY:
                hurry = True
            else:
                pending.add(*message)
        if pending.events:
            if writer.write(pending):
                writer.outage.ended()
                lessons.take(pending)
                pending = _Batch()
            elif pending.events >= _MAX_PENDING or not running:
                log.error("store: database unavailable, %d verdict events dropped", pending.events)
                _report(pipe, (0, pending.events))
                pending = _Batch()
        if writer.refused:
            _report(pipe, (0, writer.refused))
            writer.refused = 0
        due = hurry or idle or not running or time.monotonic() - learned_at >= _LEARN_SECONDS
        if lessons.events and due:
            try:
                if lessons.counts:
                    assert lessons.first is not None and lessons.last is not None
                    writer.learn(lessons.counts, lessons.first, lessons.last)
            except writer.errors as error:
                if len(lessons.counts) < _MAX_LESSONS and running:
                    writer.outage.failed(len(lessons.counts), error, "correspondent count")
                    continue
                log.error("store: %d correspondent counts dropped: %s", len(lessons.counts), error)
            else:
                writer.outage.ended()
            _report(pipe, (lessons.events, 0))
            lessons = _Lessons()
            learned_at = time.monotonic()
        hurry = hurry and bool(lessons.events)
    engine.dispose()


def _report(pipe: Connection, counts: tuple[int, int]) -> None:
    with contextlib.suppress(OSError):  # the gateway's process is gone: nobody left to tell
        pipe.send(counts)
