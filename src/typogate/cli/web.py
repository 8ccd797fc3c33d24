"""``typogate web`` (dashboard and REST API) and ``typogate users`` (who may sign in)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from typogate.cli import app
from typogate.cli.options import (
    ConfigFile,
    Db,
    Json,
    KnownFiles,
    ProfileName,
    ProtectFiles,
)
from typogate.cli.startup import (
    FAILED,
    announce_first_admin,
    failing_cleanly,
    listen_address,
    load_config,
    open_runtime,
    open_store,
    read_config,
    setup_logging,
    stderr,
    stdout,
)
from typogate.gateway import controller
from typogate.vocabulary import Role

if TYPE_CHECKING:
    from typogate.store.accounts import Accounts

users = typer.Typer(
    name="users", help="Accounts of the web interface (viewer or admin).", no_args_is_help=True
)
app.add_typer(users)


@app.command()
def web(
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Where to listen (default web.listen, 127.0.0.1:8025).",
        ),
    ] = None,
    db: Db = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: ProfileName = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """Run the dashboard and REST API alone, on the store the gateway writes to.

    `typogate serve` runs this too; use `web` when the gateway runs elsewhere.
    Sign in with an account from `typogate users`; the first start makes `admin`
    and prints its password. The OpenAPI spec is at /openapi.json, Prometheus
    metrics at /metrics, health at /health. Rules edited here reach every gateway
    on the same store within seconds.
    """
    from typogate.web.server import WebServer

    controller.block_stop_signals()
    flags = (config, protect, known, profile)
    settings = load_config(*flags)
    host, port = listen_address(listen or settings.web.listen, "--listen")
    setup_logging(verbose, settings.limits)
    # The web part records no verdicts; like serve, it makes the store on its first start
    # (with the admin account), which the gateways on the same store then use.
    runtime = open_runtime(
        settings, db, required=True, create=True, reread=lambda: read_config(*flags)
    )
    try:
        with failing_cleanly():
            announce_first_admin(runtime)
            runtime.finish_hold_actions()
            controller.serve([WebServer(runtime, host, port)], reload=runtime.reload)
    finally:
        runtime.close()


def _accounts(db: str | None, config: Path | None) -> Accounts:
    return open_store(load_config(config), db).accounts


@contextmanager
def _account_change() -> Iterator[None]:
    """A refused account change ends the command: its sentence, exit status 1."""
    from typogate.store.accounts import AccountError

    try:
        yield
    except AccountError as error:
        stderr().print(str(error), style="bold red", soft_wrap=True)
        raise typer.Exit(FAILED) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
]


@users.command("list")
def users_list(db: Db = None, config: ConfigFile = None, as_json: Json = False) -> None:
    """List the accounts."""
    rows = _accounts(db, config).all()
    if as_json:
        print(
            json.dumps(
                [{"username": n, "role": r.value, "created": c.isoformat()} for n, r, c in rows]
            )
        )
        return
    table = Table("account", "role", "created")
    for name, role, created in rows:
        table.add_row(name, role.value, created.strftime("%Y-%m-%d %H:%M"))
    stdout().print(table)  # the listing is the command's output: stdout, as holds


@users.command("add")
def users_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Account name (a-z, 0-9, . _ - @).")],
    role: Annotated[
        Role, typer.Option("--role", help="viewer (reads) or admin (also acts).")
    ] = Role.VIEWER,
    password_stdin: PasswordStdin = False,
    db: Db = None,
    config: ConfigFile = None,
) -> None:
    """Add an account (asks for its password)."""
    with _account_change():
        _accounts(db, config).create(name, _password(password_stdin), role)
    stderr().print(f"account {name} ({role}) added")


@users.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Account name.")],
    password_stdin: PasswordStdin = False,
    db: Db = None,
    config: ConfigFile = None,
) -> None:
    """Set an account's password; its open sessions end."""
    with _account_change():
        _accounts(db, config).set_password(name, _password(password_stdin))
    stderr().print(f"password of {name} changed")


@users.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Account name.")],
    db: Db = None,
    config: ConfigFile = None,
) -> None:
    """Remove an account and its sessions."""
    with _account_change():
        _accounts(db, config).remove(name)
    stderr().print(f"account {name} removed")
