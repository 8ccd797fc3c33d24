"""``typogate holds``, ``release``, ``delete``, ``release-link``: what admins do with held mail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from typogate.cli import app
from typogate.cli.configuration import (
    DEFAULT_DB,
    ConfigFile,
    Db,
    load_config,
    open_store,
    stderr,
)
from typogate.policy import Config

if TYPE_CHECKING:
    from typogate.store.quarantine import Quarantine


def _quarantine(db: str, config: Path | None) -> tuple[Quarantine, Config]:
    from typogate.store.quarantine import Quarantine, release_secret

    settings = load_config(config, None, None, None)
    release = settings.release
    store = open_store(db, writer=False)
    quarantine = Quarantine(store, release_secret(store, release.secret), release.postfix_config)
    return quarantine, settings


@app.command()
def holds(
    db: Db = DEFAULT_DB,
    state: Annotated[
        str, typer.Option("--state", help="held, released, deleted or gone.")
    ] = "held",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List held messages: recipients, reason, suggestion, sender, Postfix queue id."""
    store = open_store(db, writer=False)
    rows = store.holds(state)
    store.close()
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return
    table = Table(title=f"{len(rows)} {state} message(s)")
    for column in ("hold", "time", "sender", "recipients", "reason", "did you mean", "queue id"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["hold_id"]),
            str(row["time"])[:19],
            str(row["sender"] or ""),
            ", ".join(row["recipients"]),
            ", ".join(row["reasons"]),
            ", ".join(s or "" for s in row["suggestions"]),
            str(row["queue_id"] or ""),
        )
    Console().print(table)


@app.command()
def release(
    hold_id: Annotated[str | None, typer.Argument(help="The hold to release.")] = None,
    why: Annotated[
        str, typer.Option("--why", help="Recorded in the audit trail.")
    ] = "released by an admin",
    actor: Annotated[
        str, typer.Option("--actor", help="Who releases (audit trail).")
    ] = "admin (cli)",
    token: Annotated[
        str | None, typer.Option("--token", help="Release with a sender's link token.")
    ] = None,
    db: Db = DEFAULT_DB,
    config: ConfigFile = None,
) -> None:
    """Release a held message (postsuper -H). Releasing twice is harmless."""
    from typogate.store.quarantine import HoldError

    quarantine, settings = _quarantine(db, config)
    try:
        if token is not None:
            outcome = quarantine.release_by_link(token, int(settings.release.link_hours * 3600))
        elif hold_id is not None:
            outcome = quarantine.release(hold_id, actor, why)
        else:
            raise HoldError("name a hold id or give --token")
    except HoldError as error:
        stderr.print(f"[bold red]not released[/]: {error}")
        raise typer.Exit(1) from None
    finally:
        quarantine.store.close()
    print(outcome.message)


@app.command()
def delete(
    hold_id: Annotated[str, typer.Argument(help="The hold to delete.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the message is gone for good.")
    ] = False,
    why: Annotated[str, typer.Option("--why")] = "deleted by an admin",
    actor: Annotated[str, typer.Option("--actor")] = "admin (cli)",
    db: Db = DEFAULT_DB,
    config: ConfigFile = None,
) -> None:
    """Delete a held message (postsuper -d). Needs --yes."""
    from typogate.store.quarantine import HoldError

    quarantine, _ = _quarantine(db, config)
    try:
        print(quarantine.delete(hold_id, actor, why, confirm=yes).message)
    except HoldError as error:
        stderr.print(f"[bold red]not deleted[/]: {error}" + ("" if yes else " (add --yes)"))
        raise typer.Exit(1) from None
    finally:
        quarantine.store.close()


@app.command("release-link")
def release_link(
    hold_id: Annotated[str, typer.Argument(help="The hold the sender may release.")],
    db: Db = DEFAULT_DB,
    config: ConfigFile = None,
) -> None:
    """Print a signed, expiring, one-use link for the sender to release their message."""
    from typogate.store.quarantine import HoldError

    quarantine, settings = _quarantine(db, config)
    try:
        print(quarantine.release_link(hold_id, settings.release.base_url))
    except HoldError as error:
        stderr.print(f"[bold red]no link[/]: {error}")
        raise typer.Exit(2) from None
    finally:
        quarantine.store.close()
