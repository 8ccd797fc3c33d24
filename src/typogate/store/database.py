"""The store: SQLite by default (a file in WAL mode), PostgreSQL by URL; a Journal.

Writes from the gateway never block a verdict: :meth:`Store.record` queues the event and a
background thread writes batches. Each allowed delivery also counts towards the learned
correspondents (sender address, sender domain and the whole organisation ``*`` -> recipient
domain), which :meth:`Store.correspondent_counts` hands to ``Guard.learn``. When the
database is dead, events are kept in a bounded queue and retried, then dropped and counted:
mail is decided from memory and the loss is logged, never a failed verdict. Holds are the
exception: :meth:`Store.hold` commits before returning, and raises if it cannot.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from typogate.store.journal import HeldMessage, VerdictEvent
from typogate.store.models import CorrespondentRow, EventRow, HoldRow

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///typogate.db"
_MIGRATIONS = Path(__file__).parent / "migrations"
_MAX_QUEUED = 200_000  # events waiting for the writer; past this, record() drops
_MAX_PENDING = 20_000  # events taken per write, and kept for a retry while the database is down
_WRITE_SECONDS = 0.25


def normal_url(url: str) -> str:
    """``postgresql://`` means the psycopg 3 driver."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Store:
    """Events, holds and correspondents in one database (a :class:`Journal`)."""

    def __init__(self, url: str = DEFAULT_URL, *, migrate: bool = True) -> None:
        self.url = normal_url(url)
        self.engine: Engine = create_engine(self.url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if migrate:
            self.migrate()
        marker = "%s" if self.engine.dialect.paramstyle in ("format", "pyformat") else "?"
        self._insert_event = (
            "INSERT INTO events (time, recipient, domain, action, reason, adapter, mode, sender, "
            "sasl_username, suggestion, score, rule, queue_id, client_address) VALUES ("
            + ", ".join([marker] * 14)
            + ")"
        )
        # One statement, understood by SQLite (3.24+) and PostgreSQL alike.
        self._upsert_correspondent = (
            "INSERT INTO correspondents (sender, recipient_domain, count, first_seen, last_seen) "
            f"VALUES ({', '.join([marker] * 5)}) ON CONFLICT (sender, recipient_domain) DO UPDATE "
            "SET count = correspondents.count + excluded.count, last_seen = excluded.last_seen"
        )
        # record() appends here (a deque append is atomic and costs ~0.1 µs); the writer
        # takes everything every _WRITE_SECONDS, so commits are few and batches large.
        self._queued: deque[VerdictEvent] = deque()
        self._stop = threading.Event()
        self._pending: list[VerdictEvent] = []
        self.written = 0
        self.dropped = 0
        self._writer = threading.Thread(target=self._write_loop, name="store", daemon=True)
        self._writer.start()

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic)."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    # --- Journal -------------------------------------------------------------------------

    def record(self, event: VerdictEvent) -> None:
        """Queue one verdict event; returns at once, never raises."""
        if len(self._queued) >= _MAX_QUEUED:
            self.dropped += 1
            return
        self._queued.append(event)

    def hold(self, held: HeldMessage) -> None:
        """Commit a held message before returning; raises if the database cannot take it."""
        row = HoldRow(
            hold_id=held.hold_id,
            time=held.time,
            source=held.source,
            sender=held.sender,
            recipients=json.dumps(list(held.recipients)),
            reasons=json.dumps(list(held.reasons)),
            suggestions=json.dumps(list(held.suggestions)),
            queue_id=held.queue_id,
            message_path=held.message_path,
            state="held",
        )
        with Session(self.engine) as session, session.begin():
            session.add(row)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued event is written (or dropped)."""
        deadline = time.monotonic() + timeout
        while (self._queued or self._pending) and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        """Write what is queued and stop."""
        self.flush()
        self._stop.set()
        self._writer.join(timeout=10)
        self.engine.dispose()

    # --- reading -------------------------------------------------------------------------

    def holds(self, state: str = "held") -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            rows = session.scalars(
                select(HoldRow).where(HoldRow.state == state).order_by(HoldRow.time)
            )
            return [_plain(row) for row in rows]

    def correspondent_counts(self, sender: str = "*") -> dict[str, int]:
        """Allowed deliveries per recipient domain (``*``: the whole organisation)."""
        query = select(CorrespondentRow.recipient_domain, CorrespondentRow.count).where(
            CorrespondentRow.sender == sender
        )
        with Session(self.engine) as session:
            return {domain: count for domain, count in session.execute(query)}

    def event_count(self) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(EventRow)) or 0

    def learn(self, counts: dict[tuple[str, str], int], seen: datetime | None = None) -> None:
        """Add deliveries to the correspondents: ``{(sender, recipient_domain): count}``."""
        with Session(self.engine) as session, session.begin():
            self._upsert_correspondents(
                session, counts, seen or datetime.now(UTC), seen or datetime.now(UTC)
            )

    # --- writing -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            stopping = self._stop.wait(_WRITE_SECONDS)
            while self._queued and len(self._pending) < _MAX_PENDING:
                self._pending.append(self._queued.popleft())
            if self._write(self._pending):
                self._pending = []
            elif len(self._pending) >= _MAX_PENDING or stopping:
                # Dead for long (or stopping): keep deciding from memory, count the loss.
                log.error(
                    "store: database unavailable, %d verdict events dropped", len(self._pending)
                )
                self.dropped += len(self._pending)
                self._pending = []
            if stopping and not self._queued:
                return

    def _write(self, events: list[VerdictEvent]) -> bool:
        if not events:
            return True
        learned: dict[tuple[str, str], int] = defaultdict(int)
        first = min(e.time for e in events)
        last = max(e.time for e in events)
        for e in events:
            if e.action == "allow" and e.mode in ("enforce", "audit"):
                learned[("*", e.domain)] += 1
                if e.sender:
                    learned[(e.sender.lower(), e.domain)] += 1
                    learned[(e.sender.rpartition("@")[2].lower(), e.domain)] += 1
        rows = [
            (
                e.time,
                e.recipient,
                e.domain,
                e.action,
                e.reason,
                e.adapter,
                e.mode,
                e.sender,
                e.sasl_username,
                e.suggestion,
                e.score,
                e.rule,
                e.queue_id,
                e.client_address,
            )
            for e in events
        ]
        try:
            with Session(self.engine) as session, session.begin():
                # The driver's own executemany: the writer thread shares the GIL with the
                # gateway, so per-row Python work in the ORM would slow every verdict.
                cursor = session.connection().connection.cursor()
                cursor.executemany(self._insert_event, rows)
                cursor.close()
                if learned:
                    self._upsert_correspondents(session, learned, first, last)
        except SQLAlchemyError as error:
            log.error("store: cannot write %d events (will retry): %s", len(events), error)
            return False
        self.written += len(events)
        return True

    def _upsert_correspondents(
        self, session: Session, counts: dict[tuple[str, str], int], first: datetime, last: datetime
    ) -> None:
        rows = [(sender, domain, n, first, last) for (sender, domain), n in counts.items()]
        cursor = session.connection().connection.cursor()
        cursor.executemany(self._upsert_correspondent, rows)
        cursor.close()


def _sqlite_pragmas(connection, record) -> None:  # type: ignore[no-untyped-def]
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _plain(row: object) -> dict[str, Any]:
    data = {key: value for key, value in vars(row).items() if not key.startswith("_")}
    for key in ("recipients", "reasons", "suggestions"):
        if isinstance(data.get(key), str):
            data[key] = json.loads(data[key])
    return data
