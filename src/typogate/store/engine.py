"""Where the store lives: its URL, the SQLAlchemy engine, and the schema's migrations.

SQLite (a file in WAL mode) by default, PostgreSQL by URL; nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DataError, IntegrityError, SQLAlchemyError

from typogate.errors import StoreURLError, TypogateError

DEFAULT_URL = "sqlite:///typogate.db"
MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in MIGRATIONS (a test holds the two together). A store already there
# is opened without Alembic, whose import is a quarter of a store command's start-up.
HEAD = "0011"
_MIGRATION_LOCK = 0x7479706F  # "typo": the advisory lock migrations take on PostgreSQL
_REMIND_SECONDS = 60.0  # while the database is down, a writer says so again this often
Row = TypeVar("Row")

log = logging.getLogger(__name__)


class StoreUnavailable(TypogateError, RuntimeError):
    """The store cannot be opened (or a command needs one and has none); the message names
    the URL with its password hidden."""


class StoreMissing(StoreUnavailable):
    """A command that only reads or administers was pointed at a SQLite store that does not
    exist: it says so rather than make a new, empty one."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no store at {path}")
        self.path = path


def normal_url(url: str) -> str:
    """``postgresql://`` means the psycopg 3 driver. Raises :class:`StoreURLError` for a URL
    of any other kind of database, a SQLite URL with no path, or no URL at all."""
    kind = url.partition("://")[0].partition("+")[0]
    if kind not in ("sqlite", "postgresql"):
        raise StoreURLError(
            f"{shown_url(url)!r}: the store is sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    if kind == "sqlite" and _host(url):
        raise StoreURLError(
            f"{url!r}: a SQLite store is sqlite:///PATH, three slashes and the path "
            "(sqlite:///typogate.db in this folder, sqlite:////var/lib/typogate/typogate.db)"
        )
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _host(url: str) -> str | None:
    try:
        return make_url(url).host
    except ArgumentError:
        return url  # not even a URL: as wrong as a host would be


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (relative to the working folder when relative);
    None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def check_file(url: str, *, create: bool) -> Path | None:
    """Before SQLite opens ``url``'s file: raise :class:`StoreMissing` when it does not
    exist and may not be made, and :class:`StoreUnavailable` when its folder is missing
    (SQLite would only say "unable to open database file"). Returns the file when it is
    about to be made; None for one that exists, and for other URLs."""
    path = sqlite_path(url) if url.startswith("sqlite") else None
    if path is None or path.exists():
        return None
    if not create:
        raise StoreMissing(path.absolute())
    if not path.absolute().parent.is_dir():
        raise StoreUnavailable(
            f"cannot make the store {path}: the folder {path.absolute().parent} does not exist"
        )
    return path.absolute()


def shown_url(url: str) -> str:
    """``url`` with its password, if it has one, hidden: for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url  # not a URL, so no password in URL form either


def make_engine(url: str) -> Engine:
    """The engine for ``url`` (already normal): the store's readers and its writer use it."""
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def write_errors(engine: Engine) -> tuple[type[Exception], ...]:
    """What a write raises when the database is down, locked or full: SQLAlchemy's errors,
    and the driver's own, which a raw cursor (the bulk paths: executemany, COPY) raises
    as they are."""
    return (SQLAlchemyError, engine.dialect.loaded_dbapi.Error)


def refusals(engine: Engine) -> tuple[type[Exception], ...]:
    """What a write raises when the database or its driver refuses the values themselves
    (too long, a NUL, a key twice, text no encoding writes, a number past 64 bits): a
    retry cannot help, so a batch writer leaves out the row that holds them, not the rows
    beside it. Catch these before :func:`write_errors`, which they are among."""
    dbapi = engine.dialect.loaded_dbapi
    return (
        DataError,
        IntegrityError,
        dbapi.DataError,
        dbapi.IntegrityError,
        UnicodeEncodeError,
        OverflowError,
    )


class Outage:
    """What a batch writer says while its database is down. The writer retries every
    second or so; a line each time would be thousands of the same line for an hour's
    outage. So: the first failure, then every minute how long it has lasted and what
    waits, and one line when the database is back. ``writer`` and ``row`` name them in
    the log (``sink``, ``record``: ``sink: cannot write 50 records (will retry...``)."""

    def __init__(
        self, writer: str, row: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.writer, self.row = writer, row
        self._clock = clock
        self._since: float | None = None  # when the first write failed
        self._said = 0.0

    def failed(self, waiting: int, error: Exception, row: str | None = None) -> None:
        """A write of ``waiting`` rows (``row``: of another kind than the writer's own)
        failed for a reason a retry may mend."""
        now, what = self._clock(), f"{waiting} {row or self.row}s"
        if self._since is None:
            self._since = self._said = now
            log.error(
                "%s: cannot write %s (will retry, and say so again each minute it lasts): %s",
                self.writer,
                what,
                error,
            )
        elif now - self._said >= _REMIND_SECONDS:
            self._said = now
            log.error(
                "%s: the database has been down for %.0f s; %s wait: %s",
                self.writer,
                now - self._since,
                what,
                error,
            )

    def ended(self) -> None:
        """A write went through: if the database had been down, say that it is back."""
        if self._since is not None:
            log.warning(
                "%s: the database is back after %.0f s; what waited is written",
                self.writer,
                self._clock() - self._since,
            )
            self._since = None


def insert_each(
    rows: list[Row], insert: Callable[[Row], object], engine: Engine, outage: Outage
) -> tuple[int, list[Row]]:
    """Insert ``rows`` one at a time, after the database refused a value in their batch:
    a row it refuses (:func:`refusals`) is left out and logged, so that it costs only
    itself. Stops at the first row it cannot write at all (:func:`write_errors`: the
    database went down, told to ``outage``). Returns how many were left out, and the rows
    from that one on, for the caller to retry (none when all went through)."""
    refused_values, down = refusals(engine), write_errors(engine)
    left_out = 0
    for done, each in enumerate(rows):
        try:
            insert(each)
        except refused_values as error:
            left_out += 1
            log.error(
                "%s: the database refuses one %s, left out: %s", outage.writer, outage.row, error
            )
        except down as error:
            outage.failed(len(rows) - done, error)
            return left_out, rows[done:]
    return left_out, []


def migrate(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision`` (Alembic), the newest by default. Returns the
    revision it was at before (None: it had no schema)."""
    was = _schema_revision(engine)
    if revision == "head" and was == HEAD:
        return was
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Several gateways starting at once on one server migrate one after the other
            # (the lock ends with the transaction); SQLite's file lock does the same there.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return was


def _schema_revision(engine: Engine) -> str | None:
    """The revision the store's schema is at (Alembic's ``alembic_version``); None for a
    database with no schema yet."""
    with engine.connect() as connection:
        if not engine.dialect.has_table(connection, "alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _sqlite_pragmas(connection, record) -> None:  # type: ignore[no-untyped-def]
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
