"""``typogate audit``: scan mail logs and sent items for mail to look-alike domains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

from typogate.audit import AuditInputError, run, write_report
from typogate.audit.sources import PART_BYTES
from typogate.audit.tracking_csv import parse_columns
from typogate.cli import app
from typogate.cli.options import ConfigFile, KnownFiles, ProfileName, ProtectFiles
from typogate.cli.startup import (
    USAGE,
    fail,
    failing_cleanly,
    load_config,
    stderr,
    stdout,
    with_ascii,
)
from typogate.vocabulary import AuditFormat, Engine


@app.command()
def audit(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH", help="Log files (plain or .gz), mbox, Maildir, .eml, CSV."),
    ],
    format: Annotated[
        AuditFormat | None,
        typer.Option(
            "--format", help="The input's format (default: sniff each path).", show_default=False
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out", metavar="DIR", help="Folder for summary.json, findings.csv, report.html."
        ),
    ] = Path("typogate-audit"),
    engine: Annotated[
        Engine, typer.Option("--engine", help="local (all cores) or dask.")
    ] = Engine.LOCAL,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="URL",
            help="Dask scheduler, tcp://HOST:PORT (else a LocalCluster).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, metavar="N", help="Processes (local) or LocalCluster workers."
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            metavar="SPEC",
            help="For --format csv, the columns: time=COL, sender=COL, recipient=COL and "
            "status=COL, joined by commas (recipient=To,time=Date).",
        ),
    ] = None,
    part_bytes: Annotated[
        int,
        typer.Option(
            "--part-bytes", min=64, metavar="BYTES", help="Bytes per partition of a plain log file."
        ),
    ] = PART_BYTES,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: ProfileName = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """How much has already leaked? Find mail sent to look-alike domains in old logs.

    \b
    Examples:
      typogate audit /var/log/mail.log*          (rotated sets, .gz too)
      typogate audit exports/sent.mbox exports/Maildir --out report/
      typogate audit tracking.csv --format exchange --engine dask --workers 2
      typogate audit log.csv --format csv \\
        --columns time=Date,sender=From,recipient=To,status=Result

    A malformed line or message is counted, with its file:line.
    A path that cannot be read (missing, a FIFO or device, a link loop,
    a damaged archive) is named with the reason (summary.json: input_errors).
    Either way the run goes on. Exit status 0 when it ran,
    2 for bad usage (no path could be read at all).
    """
    mapping: dict[str, str] = {}
    if format is AuditFormat.CSV or columns:
        try:
            mapping = parse_columns(columns or "")
        except ValueError as error:
            fail("bad --columns", str(error), USAGE)
    settings = load_config(config, protect, known, profile)
    with Progress(
        TextColumn("[bold]auditing[/]"),
        BarColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=stderr(),
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task("audit", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, advance=done, total=total)

        with failing_cleanly():
            try:
                audit_run = run(
                    paths,
                    settings,
                    format=format,
                    engine=engine,
                    columns=mapping,
                    workers=workers,
                    scheduler=scheduler,
                    part_bytes=part_bytes,
                    progress=advance,
                )
            except AuditInputError as error:
                fail("cannot audit", str(error), USAGE)
    data = write_report(audit_run, out)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    _print(stdout(), data, out)


def _print(console: Console, data: dict, out: Path) -> None:
    table = Table(title="typogate audit", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, key in (
        ("lines read", "lines"),
        ("messages", "messages"),
        ("deliveries", "deliveries"),
        ("recipient domains", "recipient_domains"),
        ("suspected typo domains", "suspected_typo_domains"),
        ("findings", "findings"),
        ("leaked (delivered)", "leaks"),
        ("malformed", "malformed"),
    ):
        table.add_row(label, f"{data[key]:,}")
    if data["input_errors"]:
        table.add_row(
            Text("inputs not read (to the end)", style="red"), f"{len(data['input_errors']):,}"
        )
    table.add_row("lines/s", f"{data['lines_per_second'] or 0:,}")
    console.print(table)
    if data["top_typo_domains"]:
        top = Table(title="Top suspected typo domains")
        top.add_column("domain", overflow="fold")  # a cut domain is another domain
        top.add_column("messages", justify="right")
        for domain, count in data["top_typo_domains"][:10]:
            top.add_row(with_ascii(domain), f"{count:,}")
        console.print(top)
    for example in data["malformed_examples"][:5]:
        console.print(Text.assemble(("malformed", "yellow"), f" {example}"), soft_wrap=True)
    for problem in data["input_errors"]:
        where = f" {problem['path']}: {problem['error']}"
        console.print(Text.assemble(("not read", "red"), where), soft_wrap=True)
    written = f"report: {out / 'report.html'}  findings: {out / 'findings.csv'}"
    console.print(written, soft_wrap=True)
