"""``typogate holds``, ``release``, ``delete``, ``release-link``: what admins do with held mail."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

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
    with_ascii,
)
from typogate.domains import written_form
from typogate.errors import HoldError
from typogate.vocabulary import HoldState

if TYPE_CHECKING:
    from typogate.gateway.quarantine import Quarantine
    from typogate.runtime import Runtime
    from typogate.store.records import HoldRecord


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
    if not rows:  # a sentence, not an empty table's header squeezed under its title
        stdout().print(f"No {state} messages.")
        return
    table = Table(
        title=f"{len(rows)} {state} message{'' if len(rows) == 1 else 's'}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        header_style="bold",
        show_edge=False,
    )
    # Two columns, so that it reads at 80: the hold id whole (what `release` takes), the
    # message's words folded, never cut.
    table.add_column("hold", no_wrap=True)
    table.add_column("message", overflow="fold", ratio=1)
    for row in rows:
        table.add_row(_hold_cell(row), _message_cell(row))
    stdout().print(table)


def _hold_cell(row: HoldRecord) -> Text:
    cell = Text(row.hold_id)
    cell.append(f"\n{row.time:%Y-%m-%d %H:%M:%S}", style="dim")
    if row.queue_id:
        cell.append(f"\nqueue {row.queue_id}", style="dim")
    return cell


def _message_cell(row: HoldRecord) -> Text:
    """From whom, then each recipient that held it with why and what was probably meant;
    a name that is not ASCII with its A-label form beneath (a look-alike shows for what it
    is: rita@аrmy.mil over rita@xn--rmy-5cd.mil)."""
    cell = Text("from ")
    # "sue doe"@army.ml, as a person writes it, whichever adapter held the mail
    cell.append_text(with_ascii(written_form(row.sender), "     ") if row.sender else Text("<>"))
    for recipient, reason, meant in zip(row.recipients, row.reasons, row.suggestions, strict=True):
        cell.append("\nto ")
        cell.append_text(with_ascii(written_form(recipient), "   "))
        cell.append(f"\n   {reason}" + (f": did you mean {meant}?" if meant else ""), style="dim")
    return cell


# What an admin's release or delete records in the audit trail.
Why = Annotated[str, typer.Option("--why", metavar="TEXT", help="Recorded in the audit trail.")]
Actor = Annotated[str, typer.Option("--actor", metavar="NAME", help="Who acts (audit trail).")]


@app.command()
def release(
    hold_id: Annotated[
        str | None, typer.Argument(metavar="HOLD_ID", help="The hold to release.")
    ] = None,
    why: Why = "released by an admin",
    actor: Actor = "admin (cli)",
    token: Annotated[
        str | None,
        typer.Option("--token", metavar="TOKEN", help="Release with a sender's link token."),
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
    hold_id: Annotated[str, typer.Argument(metavar="HOLD_ID", help="The hold to delete.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the message is gone for good.")
    ] = False,
    why: Why = "deleted by an admin",
    actor: Actor = "admin (cli)",
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
    hold_id: Annotated[
        str, typer.Argument(metavar="HOLD_ID", help="The hold the sender may release.")
    ],
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
