"""The store: one database (SQLite by default, PostgreSQL by URL) and its parts.

``Store`` opens the database, migrates it, and hands out the repositories by job: the
history (what happened, learned relationships), the held messages, the web's rules, the
accounts, the monitor's look-alike snapshots and the sink's records. A store opened with
a writer is also a :class:`~typogate.store.journal.Journal`: verdict events go to the
batched writer (``store/writer.py``) and never block a verdict; held messages are committed
before :meth:`Store.hold` returns, and it raises if it cannot.
"""

from __future__ import annotations

import logging
import secrets

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from typogate.store.accounts import Accounts
from typogate.store.engine import (
    DEFAULT_URL,
    HEAD,
    StoreUnavailable,
    check_file,
    make_engine,
    migrate,
    normal_url,
    shown_url,
)
from typogate.store.history import History
from typogate.store.holds import Holds
from typogate.store.journal import HeldMessage, VerdictEvent
from typogate.store.lookalikes import LookAlikeSnapshots
from typogate.store.models import SecretRow
from typogate.store.rules import RuleTable
from typogate.store.sink_log import SinkHistory
from typogate.store.writer import Recorder
from typogate.vocabulary import Evidence

log = logging.getLogger(__name__)


class Store:
    """Events, holds, correspondents, rules and accounts in one database."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        migrate: bool = True,
        writer: bool = True,
        create: bool = True,
        keep_allowed: bool = False,
        session_hours: float = 12.0,
    ) -> None:
        """Open (and migrate) the store. ``writer=False`` is for reading and admin work:
        no writer process, and :meth:`record` refuses. ``create=False``: a SQLite file that
        does not exist is :class:`~typogate.store.engine.StoreMissing`, not made.
        ``keep_allowed``: keep a row for every allowed verdict too (by default those are
        only counted); ``session_hours``: how long a web sign-in lasts."""
        self.url = normal_url(url)
        new_file = check_file(self.url, create=create)
        self.engine = make_engine(self.url)
        was: str | None = HEAD
        if migrate:
            try:
                was = self.migrate()
            except SQLAlchemyError as error:
                self.engine.dispose()
                raise StoreUnavailable(f"cannot open the store {shown_url(url)}: {error}") from None
        # One line for what the migrations did (each step's own is --verbose's).
        if new_file is not None:
            log.info("store: made a new, empty store at %s", new_file)
        elif was is None:
            log.info("store: made typogate's tables in %s", shown_url(url))
        elif was != HEAD:
            log.info("store: schema upgraded from revision %s to %s", was, HEAD)
        self.history = History(self.engine)
        self.holds = Holds(self.engine)
        self.rules = RuleTable(self.engine)
        self.accounts = Accounts(self.engine, session_hours)
        self.look_alikes = LookAlikeSnapshots(self.engine)
        self.sink = SinkHistory(self.engine)
        self._recorder = Recorder(self.url, keep_allowed=keep_allowed) if writer else None

    def migrate(self) -> str | None:
        """Bring the schema to the newest revision (Alembic); returns the revision it was
        at before (None: it had no schema)."""
        return migrate(self.engine)

    # --- Journal -------------------------------------------------------------------------

    def record(self, event: VerdictEvent) -> None:
        """Queue one verdict event; returns at once, never raises (but in a store opened
        with ``writer=False``, a programming error)."""
        if self._recorder is None:
            raise RuntimeError("this store was opened without a writer")
        self._recorder.record(event)

    def hold(self, held: HeldMessage) -> None:
        """Commit a held message before returning; raises if the database cannot take it."""
        self.holds.add(held)

    def void_hold(self, hold_id: str, why: str) -> None:
        """Delete a hold that holds no message (the gatekeeper logs ``why``)."""
        self.holds.void(hold_id)

    def observe(self, party: str, domain: str, evidence: Evidence) -> None:
        """Queue evidence of a relationship (mail ``party`` sent to ``domain`` or received
        from it, a release); returns at once, never raises (but without a writer, as
        :meth:`record`)."""
        if self._recorder is None:
            raise RuntimeError("this store was opened without a writer")
        self._recorder.observe(party, domain, evidence)

    # --- the writer ----------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Events recorded but not yet written (0 without a writer)."""
        return self._recorder.queued if self._recorder is not None else 0

    @property
    def written(self) -> int:
        """Events this process's writer stored."""
        return self._recorder.written if self._recorder is not None else 0

    @property
    def dropped(self) -> int:
        """Events dropped because the queue was full or the database stayed unreachable."""
        return self._recorder.dropped if self._recorder is not None else 0

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued event is written (or dropped)."""
        if self._recorder is not None:
            self._recorder.flush(timeout)

    def close(self) -> None:
        """Write what is queued and stop."""
        if self._recorder is not None:
            self._recorder.close()
        self.engine.dispose()

    # --- typogate's own secrets ----------------------------------------------------------

    def secret(self, name: str) -> str:
        """A random secret of typogate's own, made on first use and kept in the store
        (the release-link key when the configuration sets none)."""
        for _ in range(2):  # a second process may make it at the same moment: then read it
            try:
                with Session(self.engine) as session, session.begin():
                    row = session.get(SecretRow, name)
                    if row is None:
                        row = SecretRow(name=name, value=secrets.token_urlsafe(32))
                        session.add(row)
                    return row.value
            except IntegrityError:
                continue
        raise RuntimeError(f"cannot keep the secret {name!r} in the store")
