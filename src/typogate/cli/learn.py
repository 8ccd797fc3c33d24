"""``typogate learn``: seed the learned correspondents from existing Postfix logs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from typogate.cli import app
from typogate.cli.options import DEFAULT_DB, ConfigFile, Db
from typogate.cli.startup import USAGE, fail, load_config, open_runtime, stderr
from typogate.vocabulary import AuditFormat


@app.command()
def learn(
    paths: Annotated[list[Path], typer.Argument(help="Postfix mail logs (plain or .gz).")],
    db: Db = DEFAULT_DB,
    config: ConfigFile = None,
) -> None:
    """Seed the learned correspondents from existing Postfix logs.

    Every delivered message counts towards its recipient domain: a domain this organisation
    really writes to stops being flagged, and its near-twins become suspicious.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

    from typogate.audit.postfix_log import sent_by_domain
    from typogate.audit.sources import AuditInputError, plan, read_chunk
    from typogate.store.engine import shown_url

    try:
        parts = plan(paths, AuditFormat.POSTFIX)
    except AuditInputError as error:
        fail("cannot read", str(error), USAGE)
    runtime = open_runtime(load_config(config), db)
    assert runtime.store is not None
    totals: dict[str, int] = {}
    with Progress(
        TextColumn("[bold]learning[/]"), BarColumn(), TransferSpeedColumn(), console=stderr()
    ) as progress:
        task = progress.add_task("learn", total=sum(part.size for part in parts))
        for part in parts:
            for domain, count in sent_by_domain(read_chunk(part)).items():
                totals[domain] = totals.get(domain, 0) + count
            progress.advance(task, part.size)
    runtime.store.history.learn({("*", domain): count for domain, count in totals.items()})
    runtime.close()
    stderr().print(
        f"learned {sum(totals.values()):,} deliveries to {len(totals):,} domains "
        f"into {shown_url(db)}"
    )
