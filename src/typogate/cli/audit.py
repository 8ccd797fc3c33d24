"""``typogate audit``: scan mail logs and sent items for mail to look-alike domains."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table

from typogate.audit import report
from typogate.audit.engines import Settings, run_dask, run_local
from typogate.audit.sources import FORMATS, PART_BYTES, AuditInputError, plan
from typogate.audit.tracking_csv import parse_columns
from typogate.cli import app
from typogate.cli.configuration import (
    ConfigFile,
    KnownFiles,
    Profile,
    ProtectFiles,
    build_guard,
    load_config,
    stderr,
)


@app.command()
def audit(
    paths: Annotated[
        list[Path], typer.Argument(help="Log files (plain or .gz), mbox, Maildir, .eml, CSV.")
    ],
    format: Annotated[
        str,
        typer.Option("--format", help=f"auto (sniff each path) or one of: {', '.join(FORMATS)}."),
    ] = "auto",
    out: Annotated[
        Path, typer.Option("--out", help="Folder for summary.json, findings.csv, report.html.")
    ] = Path("typogate-audit"),
    engine: Annotated[str, typer.Option("--engine", help="local (all cores) or dask.")] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Dask scheduler, tcp://HOST:PORT (else a LocalCluster)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Processes (local) or LocalCluster workers."),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns", help="For --format csv: time=COL,sender=COL,recipient=COL,status=COL."
        ),
    ] = None,
    part_bytes: Annotated[
        int, typer.Option("--part-bytes", min=64, help="Bytes per partition of a plain log file.")
    ] = PART_BYTES,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: Profile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """How much has already leaked? Find mail sent to look-alike domains in old logs.

    \b
    Examples:
      typogate audit /var/log/mail.log*                       (rotated sets, .gz too)
      typogate audit exports/sent.mbox exports/Maildir --out report/
      typogate audit tracking.csv --format exchange --engine dask --workers 2
      typogate audit log.csv --format csv --columns time=Date,sender=From,recipient=To,status=Result

    A malformed line or message is counted and reported with its file:line; the run goes on.
    Exit status 0 when it ran, 2 for bad usage.
    """
    if engine not in ("local", "dask"):
        stderr.print(f"[bold red]bad --engine[/]: {engine!r} (local or dask)")
        raise typer.Exit(2)
    mapping: dict[str, str] = {}
    if format == "csv" or columns:
        try:
            mapping = parse_columns(columns or "")
        except ValueError as error:
            stderr.print(f"[bold red]bad --columns[/]: {error}")
            raise typer.Exit(2) from None
    try:
        parts = plan(paths, format, part_bytes)
    except AuditInputError as error:
        stderr.print(f"[bold red]cannot audit[/]: {error}")
        raise typer.Exit(2) from None
    if any(p.format == "csv" for p in parts) and not mapping:
        stderr.print("[bold red]--columns is needed[/] for a generic CSV (see --help)")
        raise typer.Exit(2)
    settings_config = load_config(config, protect, known, profile)
    guard = build_guard(settings_config)  # a bad domain list stops here, not in the workers
    settings = Settings.of(settings_config, mapping)
    console = Console(stderr=True)
    total = sum(part.size for part in parts)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]auditing[/]"),
        BarColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task("audit", total=total)

        def advance(part) -> None:
            progress.advance(task, part.size)

        if engine == "local":
            outcome = run_local(parts, settings, workers, advance)
        else:
            outcome = run_dask(parts, settings, scheduler, workers, advance)
    seconds = time.perf_counter() - started
    found = report.findings(outcome, guard)
    data = report.write(
        out,
        outcome,
        found,
        {
            "engine": engine,
            "seconds": round(seconds, 3),
            "lines_per_second": round(outcome.lines / seconds) if seconds else None,
            "inputs": [str(p) for p in paths],
        },
    )
    if as_json:
        print(json.dumps(data, indent=2))
        return
    _print(Console(), data, out)


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
    table.add_row("lines/s", f"{data['lines_per_second'] or 0:,}")
    console.print(table)
    if data["top_typo_domains"]:
        top = Table(title="Top suspected typo domains")
        top.add_column("domain")
        top.add_column("messages", justify="right")
        for domain, count in data["top_typo_domains"][:10]:
            top.add_row(domain, f"{count:,}")
        console.print(top)
    for example in data["malformed_examples"][:5]:
        console.print(f"[yellow]malformed[/] {example}")
    console.print(f"report: {out / 'report.html'}  findings: {out / 'findings.csv'}")
