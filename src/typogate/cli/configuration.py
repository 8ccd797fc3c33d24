"""The flags every command that judges recipients shares, and the Guard they build."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from typogate.policy import Config, ConfigError, Guard

if TYPE_CHECKING:
    from rich.console import Console

    from typogate.store import Store

ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML configuration (docs/configuration.md).", show_default=False
    ),
]
ProtectFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--protect",
        help="File of protected domains, one a line, # comments. Repeatable; adds to the config. "
        "With any protected list given, no built-in list is used.",
        show_default=False,
    ),
]
KnownFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--known", help="File of known correspondent domains. Repeatable.", show_default=False
    ),
]
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Built-in lists: us-gov (default when nothing is protected), providers, none.",
        show_default=False,
    ),
]

Db = Annotated[
    str,
    typer.Option(
        "--db", help="The store: sqlite:///PATH (default ./typogate.db) or postgresql://..."
    ),
]
DEFAULT_DB = "sqlite:///typogate.db"


def __getattr__(name: str) -> Console:
    # ``stderr`` is made on first use: rich costs ~15 ms of start-up, and a command that
    # runs well never prints to it.
    if name == "stderr":
        return _stderr()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def load_config(
    config: Path | None, protect: list[Path] | None, known: list[Path] | None, profile: str | None
) -> Config:
    """The configuration the flags describe; exits with status 2 on a bad one."""
    try:
        loaded = Config.load(config) if config is not None else Config()
        loaded = loaded.with_lists(list(protect or []), list(known or []))
        if profile is not None:
            loaded = Config.from_mapping(
                {**loaded.model_dump(by_alias=True, exclude={"base_dir"}), "profile": profile},
                base_dir=loaded.base_dir,
                source="--profile",
            )
        return loaded
    except ConfigError as error:
        _stderr().print(f"[bold red]configuration error[/]: {error}", highlight=False)
        raise typer.Exit(2) from None


def build_guard(config: Config) -> Guard:
    """Build the Guard (and its index); exits with status 2 when a domain list is bad."""
    try:
        return Guard(config)
    except ConfigError as error:
        _stderr().print(f"[bold red]configuration error[/]: {error}", highlight=False)
        raise typer.Exit(2) from None


def open_store(db: str, *, writer: bool = True, keep_allowed: bool = False) -> Store:
    """The store at ``db`` (migrated to the newest schema); exits with status 2 for a URL
    of a database typogate does not support, 1 when the database cannot be opened (the
    message hides the URL's password). ``writer=False`` for commands that only read or administer;
    ``keep_allowed`` is ``store.keep_allowed`` for the commands that record."""
    from sqlalchemy.exc import SQLAlchemyError  # the store's stack loads only when used

    from typogate.store import Store
    from typogate.store.database import StoreURLError, shown_url

    try:
        return Store(db, writer=writer, keep_allowed=keep_allowed)
    except StoreURLError as error:
        _stderr().print(f"[bold red]bad --db[/]: {error}", highlight=False)
        raise typer.Exit(2) from None
    except SQLAlchemyError as error:
        _stderr().print(f"[bold red]cannot open the store[/] {shown_url(db)}: {error}")
        raise typer.Exit(1) from None
