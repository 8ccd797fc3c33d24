"""What every command does before its own work: read the configuration, open the runtime,
set up logging, and turn typogate's errors into one line and an exit status.

Exit status 0 when a command ran, 1 when it failed (a store that cannot be opened, an
address in use), 2 for bad usage or configuration.
"""

from __future__ import annotations

import faulthandler
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from logging.handlers import SysLogHandler
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from typogate.config import SYSTEM_FILE, Config, Limits, config_file, host_and_port
from typogate.errors import CannotListen, ConfigError, StoreURLError, TypogateError
from typogate.vocabulary import Mode, Profile

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from typogate.runtime import Runtime
    from typogate.store import Store

USAGE, FAILED = 2, 1
SYSLOG_SOCKET = "/dev/log"


@cache
def stderr() -> Console:
    """The console for people on stderr; made on first use (rich costs ~15 ms of start-up,
    and a command that runs well may never print to it)."""
    return _console(stderr=True)


def stdout() -> Console:
    """The console for a command's output to people (tables, summaries) on stdout."""
    return _console(stderr=False)


def _console(*, stderr: bool) -> Console:
    # What the consoles show comes from mail, logs and DNS: an address "[/]"@army.ml or a
    # path x[/y]/mail.log is text, never a style tag (rich's markup raised on it, or ate
    # it). Styles are given as styles; nothing is highlighted by guesswork.
    from rich.console import Console

    return Console(stderr=stderr, markup=False, highlight=False)


def with_ascii(name: str, indent: str = "") -> Text:
    """A domain or an address for a table cell: with its A-label form beneath when it is
    not ASCII, so that a look-alike shows for what it is (``аrmy.mil``, a Cyrillic ``а``,
    over ``xn--rmy-5cd.mil``), as on the web pages; a character that would not show as
    itself (an escape sequence, a direction override) written as its escape. ``indent``
    starts the A-label's line, to stand under a name that follows a word."""
    from rich.text import Text

    # Not loaded by commands that print no names.
    from typogate.domains import ascii_form, printable_form

    cell = Text(printable_form(name))
    if (written := ascii_form(name)) != name:
        cell.append(f"\n{indent}{printable_form(written)}", style="dim")
    return cell


def fail(what: str, why: str, status: int = FAILED) -> NoReturn:
    """Say what went wrong on stderr, in one line, and exit with ``status``."""
    from rich.text import Text

    # soft_wrap: one line however long (a path is copied whole), the terminal folds it
    stderr().print(Text.assemble((what, "bold red"), f": {why}"), soft_wrap=True)
    raise typer.Exit(status)


@contextmanager
def failing_cleanly() -> Iterator[None]:
    """Turn the errors typogate raises on purpose into a line and an exit status."""
    try:
        yield
    except ConfigError as error:
        fail("configuration error", str(error), USAGE)
    except StoreURLError as error:
        fail("bad --db", str(error), USAGE)
    except CannotListen as error:
        stderr().print(str(error), style="bold red", soft_wrap=True)
        raise typer.Exit(FAILED) from None
    except TypogateError as error:
        stderr().print(str(error), style="bold red", soft_wrap=True)
        raise typer.Exit(FAILED) from None


def load_config(
    config: Path | None,
    protect: list[Path] | None = None,
    known: list[Path] | None = None,
    profile: Profile | None = None,
    mode: Mode | None = None,
) -> Config:
    """The configuration the flags describe, read from ``config`` or the standard place
    (:func:`~typogate.config.config_file`); exits with status 2 on a bad one."""
    with failing_cleanly():
        return read_config(config, protect, known, profile, mode)


def read_config(
    config: Path | None,
    protect: list[Path] | None = None,
    known: list[Path] | None = None,
    profile: Profile | None = None,
    mode: Mode | None = None,
) -> Config:
    """:func:`load_config` raising :class:`ConfigError` instead of exiting: what a reload
    calls again, with the same flags, when the file changed."""
    file = config_file(config)
    loaded = Config.load(file) if file is not None else Config()
    loaded = loaded.with_lists(list(protect or []), list(known or []))
    changes = {"profile": profile, "mode": mode}
    changes = {key: value for key, value in changes.items() if value is not None}
    return loaded.with_settings(changes, "command line") if changes else loaded


def open_runtime(
    config: Config,
    db: str | None,
    *,
    recording: bool = False,
    create: bool = False,
    required: bool = False,
    reread: Callable[[], Config] | None = None,
) -> Runtime:
    """The running typogate of this command (see :meth:`Runtime.open`) on the store of
    ``--db``, else of ``store.url``, else (when the command ``required`` one) the default
    ./typogate.db. Exits with status 2 for a store URL typogate does not support, 1 when
    the store cannot be opened or, for a command that neither records nor creates one,
    does not exist."""
    from typogate.runtime import Runtime

    url = db or config.store_url
    if url is None and not required:  # no store: the database libraries are never loaded
        with failing_cleanly():
            return Runtime.open(config, None, recording=recording, create=create, reread=reread)
    from typogate.store.engine import DEFAULT_URL, StoreMissing

    url = url or DEFAULT_URL
    with failing_cleanly():
        try:
            return Runtime.open(config, url, recording=recording, create=create, reread=reread)
        except StoreMissing as error:
            fail(str(error), f"{_store_origin(config, db)}. {_how_to_make_one(config)}")


def open_store(config: Config, db: str | None) -> Store:
    """The store of a command that only reads or writes it (accounts, rules): as
    :func:`open_runtime` finds it, never created here."""
    store = open_runtime(config, db, required=True).store
    assert store is not None  # required: the runtime opened one, or the command exited
    return store


def _store_origin(config: Config, db: str | None) -> str:
    if db:
        return "named by --db"
    if config.store.url is not None:
        return f"named by store.url in {config.source}"
    if config.source is not None:
        return f"the default: {config.source} names no store.url"
    return f"the default: no configuration file ({SYSTEM_FILE} does not exist)"


def _how_to_make_one(config: Config) -> str:
    return (
        "typogate serve (or an adapter given the store) makes it when it first starts; "
        "name the store it uses with --db, or with store.url in "
        f"{config.source or SYSTEM_FILE}"
    )


def listen_address(text: str, flag: str) -> tuple[str, int]:
    """``HOST:PORT`` of a listening flag or key; exits with status 2 when malformed."""
    try:
        return host_and_port(text, flag)
    except ConfigError as error:
        fail("bad address", str(error), USAGE)


def setup_logging(verbose: bool, limits: Limits) -> None:
    """Log lines on stderr, for the service manager's journal (which stamps the time
    itself: under systemd the lines carry none of their own), bounded by ``limits``: at
    most ``log_lines_per_minute`` of one kind a minute and ``log_line_chars`` each, so no
    stream of bad input makes the log grow faster than that."""
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    # A fatal signal (SIGABRT from systemd's watchdog, when a listener's loop hangs) leaves
    # the stack of every thread in the log: where it hung.
    faulthandler.enable(all_threads=True)
    handler = BoundedLogHandler(limits.log_lines_per_minute, limits.log_line_chars)
    handler.setFormatter(logging.Formatter(stamp + "%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # aiosmtpd (the proxy) logs every SMTP command at INFO, Alembic each plugin it sets up
    # and each migration step with its whole docstring, uvicorn four lines of its own life
    # at each start and stop: that is --verbose's job. typogate says in one line what the
    # migrations did and where the web interface listens.
    quiet = logging.DEBUG if verbose else logging.WARNING
    for library in ("mail.log", "alembic", "uvicorn.error"):
        logging.getLogger(library).setLevel(quiet)


class BoundedLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stderr handler that writes at most ``per_minute`` records of one kind each
    minute, each cut to ``chars`` characters; the first record after a minute with records
    left out says how many. A record's kind is its logger and its message before the
    arguments, or, for a message made whole beforehand (the gateway's ``key=value``
    lines), its first word (``event=verdict``)."""

    def __init__(self, per_minute: int, chars: int) -> None:
        super().__init__()
        self.per_minute = per_minute
        self.chars = chars
        self._minute = 0
        self._counts: dict[tuple[str, str], int] = {}

    def emit(self, record: logging.LogRecord) -> None:  # called under the handler's lock
        minute = int(record.created // 60)
        if minute != self._minute:
            left_out = sum(max(0, n - self.per_minute) for n in self._counts.values())
            self._minute, self._counts = minute, {}
            if left_out:
                super().emit(
                    logging.makeLogRecord(
                        {
                            "name": "typogate",
                            "levelno": logging.WARNING,
                            "levelname": "WARNING",
                            "msg": "%d log lines left out in the last minute "
                            "(more than %d of one kind; limits.log_lines_per_minute)",
                            "args": (left_out, self.per_minute),
                        }
                    )
                )
        template = str(record.msg)
        kind = (record.name, template if record.args else template.split(" ", 1)[0][:80])
        seen = self._counts.get(kind, 0) + 1
        self._counts[kind] = seen
        if seen > self.per_minute:
            return
        message = record.getMessage()
        if len(message) > self.chars:
            record = logging.makeLogRecord(
                record.__dict__ | {"msg": message[: self.chars] + " [cut]", "args": ()}
            )
        super().emit(record)


def log_like_postsuper() -> None:
    """For the one-shot hold commands: their action lines go on stderr, and also where
    Postfix's own tools (postsuper) log theirs, syslog's mail facility, when this machine
    has a syslog socket."""
    typogate = logging.getLogger("typogate")
    typogate.setLevel(logging.INFO)
    shown = logging.StreamHandler()
    shown.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    typogate.addHandler(shown)
    if Path(SYSLOG_SOCKET).exists():
        system = SysLogHandler(SYSLOG_SOCKET, facility=SysLogHandler.LOG_MAIL)
        system.setFormatter(logging.Formatter(f"typogate[{os.getpid()}]: %(message)s"))
        typogate.addHandler(system)


def announce_first_admin(runtime: Runtime) -> None:
    """Make the ``admin`` account when the store has none yet, and show its password once."""
    from rich.panel import Panel
    from rich.text import Text

    assert runtime.store is not None
    password = runtime.store.accounts.first_admin()
    if password is not None:
        stderr().print(
            Panel(
                Text.assemble(
                    "account ",
                    ("admin", "bold"),
                    "   password ",
                    (password, "bold"),
                    "\nShown this once. Change it: typogate users passwd admin",
                ),
                title="first admin account",
                border_style="yellow",
            )
        )
