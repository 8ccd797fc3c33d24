"""The command-line options several commands share, each defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from typogate.vocabulary import Mode, Profile

ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="TOML configuration (docs/configuration.md). Default: the file $TYPOGATE_CONFIG "
        "names, else /etc/typogate/typogate.toml when it exists, else built-in defaults.",
        show_default=False,
    ),
]
ProtectFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--protect",
        metavar="FILE",
        help="File of protected domains, one a line, # comments. Repeatable; adds to the config. "
        "With any protected list given, no built-in list is used.",
        show_default=False,
    ),
]
KnownFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--known",
        metavar="FILE",
        help="File of known correspondent domains. Repeatable.",
        show_default=False,
    ),
]
ProfileName = Annotated[
    Profile | None,
    typer.Option(
        "--profile",
        metavar="PROFILE",
        help="Built-in lists: us-gov (the default when nothing is protected), providers or none.",
        show_default=False,
    ),
]
# Commands that need a store (serve, web, holds, users, ...): --db, else store.url, else
# ./typogate.db. Only the services (serve, web, ...) and learn make one that does not exist.
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="The store: sqlite:///PATH or postgresql://USER@HOST/DB. Default: store.url of "
        "the configuration, else sqlite:///typogate.db in this folder.",
        show_default=False,
    ),
]
# The adapters work without a store; given one (--db or store.url), they judge with its
# learned correspondents and rules and record in it.
OptionalDb = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="A store (sqlite:///PATH, postgresql://...; default store.url of the "
        "configuration): judge with its learned correspondents and rules, and record there "
        "instead of the gateway.journal file.",
        show_default=False,
    ),
]
ModeChoice = Annotated[
    Mode | None,
    typer.Option(
        "--mode",
        metavar="MODE",
        help="enforce (default), or audit: decide and log, change nothing.",
    ),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]
