"""``typogate holds``, ``release``, ``delete``, ``release-link``: what admins do with held mail."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from typogate.cli import app
from typogate.cli.options import ConfigFile, Db, Json
from typogate.cli.startup import (
    FAILED,
    USAGE,
    fail,
    load_config,
    log_like_postsuper,
    open_runtime,
    stdout,
)
from typogate.errors import HoldError
from typogate.vocabulary import HoldState

if TYPE_CHECKING:
    from typogate.gateway.quarantine import Quarantine
    from typogate.runtime import Runtime


def _runtime(db: str | None, config: Path | None) -> tuple[Runtime, Quarantine]:
    log_like_postsuper()
    runtime = open_runtime(load_config(config), db, required=True)
    try:
        quarantine = runtime.quarantine
    except HoldError as error:  # a release.secret too short to sign links
        runtime.close()
        fail("configuration error", str(error), USAGE)
    runtime.finish_hold_actions()
    return runtime, quarantine


@app.command()
def holds(
    db: Db = None,
    state: Annotated[HoldState, typer.Option("--state", help="Which holds to list.")] = (
        HoldState.HELD
    ),
    as_json: Json = False,
    config: ConfigFile = None,
) -> None:
    """List held messages: recipients, reason, suggestion, sender, Postfix queue id."""
    runtime = open_runtime(load_config(config), db, required=True)
    assert runtime.store is not None
    rows = runtime.store.holds.in_state(state)
    runtime.close()
    if as_json:
        print(json.dumps([dataclasses.asdict(row) for row in rows], default=str, indent=2))
        return
    table = Table(title=f"{len(rows)} {state} message(s)")
    for column in ("hold", "time", "sender", "recipients", "reason", "did you mean", "queue id"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.hold_id,
            row.time.strftime("%Y-%m-%d %H:%M:%S"),
            row.sender or "",
            ", ".join(row.recipients),
            ", ".join(row.reasons),
            ", ".join(s or "" for s in row.suggestions),
            row.queue_id or "",
        )
    stdout().print(table)


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
    db: Db = None,
    config: ConfigFile = None,
) -> None:
    """Release a held message (postsuper -H). Releasing twice is harmless."""
    runtime, quarantine = _runtime(db, config)
    try:
        if token is not None:
            link_seconds = int(runtime.config.release.link_hours * 3600)
            outcome = quarantine.release_by_link(token, link_seconds)
        elif hold_id is not None:
            outcome = quarantine.release(hold_id, actor, why)
        else:
            raise HoldError("name a hold id or give --token")
    except HoldError as error:
        fail("not released", str(error), FAILED)
    finally:
        runtime.close()
    print(outcome.message)


@app.command()
def delete(
    hold_id: Annotated[str, typer.Argument(help="The hold to delete.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the message is gone for good.")
    ] = False,
    why: Annotated[str, typer.Option("--why")] = "deleted by an admin",
    actor: Annotated[str, typer.Option("--actor")] = "admin (cli)",
    db: Db = None,
    config: ConfigFile = None,
) -> None:
    """Delete a held message (postsuper -d). Needs --yes."""
    runtime, quarantine = _runtime(db, config)
    try:
        print(quarantine.delete(hold_id, actor, why, confirm=yes).message)
    except HoldError as error:
        fail("not deleted", str(error) + ("" if yes else " (add --yes)"), FAILED)
    finally:
        runtime.close()


@app.command("release-link")
def release_link(
    hold_id: Annotated[str, typer.Argument(help="The hold the sender may release.")],
    db: Db = None,
    config: ConfigFile = None,
) -> None:
    """Print a signed, expiring, one-use link for the sender to release their message."""
    runtime, quarantine = _runtime(db, config)
    try:
        print(quarantine.release_link(hold_id, runtime.config.release.base_url))
    except HoldError as error:
        fail("no link", str(error), USAGE)
    finally:
        runtime.close()
