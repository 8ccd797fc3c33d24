"""``typogate web`` (dashboard and REST API) and ``typogate users`` (who may sign in)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from typogate.cli import app
from typogate.cli.configuration import (
    DEFAULT_DB,
    ConfigFile,
    Db,
    KnownFiles,
    Profile,
    ProtectFiles,
    build_guard,
    load_config,
    open_store,
    stderr,
)
from typogate.cli.gateway import host_port, setup_logging
from typogate.policy import Config, Guard

if TYPE_CHECKING:
    import uvicorn

    from typogate.store import Store
    from typogate.web import WebContext
    from typogate.web.accounts import Accounts

users = typer.Typer(
    name="users", help="Accounts of the web interface (viewer or admin).", no_args_is_help=True
)
app.add_typer(users)


def web_context(store: Store, settings: Config, guard: Guard) -> WebContext:
    """The web's context, the stored rules applied to ``guard``, and the first admin
    account announced when this store has none yet."""
    from typogate.web import WebContext

    ctx = WebContext(store, settings, guard)
    ctx.apply_rules()
    password = ctx.accounts.first_admin()
    if password is not None:
        stderr.print(
            Panel(
                f"account [bold]admin[/]   password [bold]{password}[/]\n"
                "Shown this once. Change it: typogate users passwd admin",
                title="first admin account",
                border_style="yellow",
            )
        )
    return ctx


def start_web(ctx: WebContext, listen: str) -> tuple[uvicorn.Server, threading.Thread]:
    """Serve the web app from a thread of its own (its own event loop, so a slow page never
    delays a verdict); exits with status 1 when the address cannot be bound."""
    import uvicorn

    from typogate.web import create_app

    host, port = host_port(listen, "web.listen")
    server = uvicorn.Server(
        uvicorn.Config(create_app(ctx), host=host, port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():  # uvicorn logged why (address in use, say)
            stderr.print(
                f"[bold red]cannot run the web interface on[/] {listen}: see the error above",
                highlight=False,
            )
            raise typer.Exit(1)
        time.sleep(0.02)
    logging.getLogger("typogate").info("web interface on http://%s", listen)
    return server, thread


@app.command()
def web(
    listen: Annotated[
        str | None, typer.Option("--listen", help="HOST:PORT (default web.listen, 127.0.0.1:8025).")
    ] = None,
    db: Db = DEFAULT_DB,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: Profile = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """Run the dashboard and REST API alone, on the store the gateway writes to.

    `typogate serve` runs this too; use `web` when the gateway runs elsewhere. Sign in with
    an account from `typogate users`; the first start makes `admin` and prints its password.
    The OpenAPI spec is at /openapi.json, Prometheus metrics at /metrics, health at /health.
    Rules edited here reach a gateway in another process when it restarts.
    """
    settings = load_config(config, protect, known, profile)
    setup_logging(verbose)
    store = open_store(db, writer=False)  # the web part reads and administers; it records nothing
    ctx = web_context(store, settings, build_guard(settings))
    server, thread = start_web(ctx, listen or settings.web.listen)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(timeout=10)
    finally:
        store.close()


def _accounts(db: str) -> Accounts:
    from typogate.web.accounts import Accounts

    return Accounts(open_store(db, writer=False).engine)


@contextmanager
def _account_change() -> Iterator[None]:
    """A refused account change ends the command: its sentence, exit status 1."""
    from typogate.web.accounts import AccountError

    try:
        yield
    except AccountError as error:
        stderr.print(f"[bold red]{error}[/]")
        raise typer.Exit(1) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
]


@users.command("list")
def users_list(
    db: Db = DEFAULT_DB, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List the accounts."""
    rows = _accounts(db).all()
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
    Console().print(table)  # the listing is the command's output: stdout, as holds


@users.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Account name (a-z, 0-9, . _ - @).")],
    role: Annotated[
        str, typer.Option("--role", help="viewer (reads) or admin (also acts).")
    ] = "viewer",
    password_stdin: PasswordStdin = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Add an account (asks for its password)."""
    from typogate.web.accounts import Role

    if role not in ("viewer", "admin"):
        stderr.print(f"[bold red]bad --role[/]: {role!r} (viewer or admin)")
        raise typer.Exit(2)
    with _account_change():
        _accounts(db).create(name, _password(password_stdin), Role(role))
    stderr.print(f"account {name} ({role}) added")


@users.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="Account name.")],
    password_stdin: PasswordStdin = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Set an account's password; its open sessions end."""
    with _account_change():
        _accounts(db).set_password(name, _password(password_stdin))
    stderr.print(f"password of {name} changed")


@users.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="Account name.")], db: Db = DEFAULT_DB
) -> None:
    """Remove an account and its sessions."""
    with _account_change():
        _accounts(db).remove(name)
    stderr.print(f"account {name} removed")
