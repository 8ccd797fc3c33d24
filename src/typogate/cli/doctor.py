"""``typogate doctor``: is Postfix set up for typogate, and are its parts reachable?"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from typogate.cli import app
from typogate.cli.options import ConfigFile, Db, Json
from typogate.cli.startup import FAILED, failing_cleanly, load_config, stderr, stdout
from typogate.config import Config
from typogate.errors import TypogateError
from typogate.gateway.checkup import Finding, StartCost, Status, checkup

_STYLE = {Status.OK: "green", Status.MISSING: "bold red", Status.NOTE: "yellow"}


@app.command()
def doctor(
    postfix_config: Annotated[
        str | None,
        typer.Option(
            "--postfix-config",
            metavar="DIR",
            help="The Postfix configuration folder to read (postconf -c DIR). Default: "
            "release.postfix_config, else Postfix's own default (/etc/postfix).",
            show_default=False,
        ),
    ] = None,
    config: ConfigFile = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Check this machine against docs/postfix.md: what is missing, and the line to add.

    \b
    Postfix (read with postconf):
      the policy service in smtpd_recipient_restrictions, before any permit_*
      the milter in non_smtpd_milters (mail from sendmail(1))
      the fail-open or fail-closed defaults, chosen on purpose
      how long Postfix waits for a typogate that hangs (timeout=10s bounds it)
      whether Postfix waits out a restart (typogate's start, timed here)
      smtpd_delay_open_until_valid_rcpt = no, when mail is held
    typogate: the policy service and the milter answer, the store opens, the
    notice relay answers, release links open.

    Exit status 0 when nothing is missing, 1 when something is (notes do not
    count).
    """
    from typogate.store.engine import DEFAULT_URL

    settings = load_config(config)
    store_url = db or settings.store_url or DEFAULT_URL
    with failing_cleanly():
        findings = checkup(
            settings,
            store_url,
            postfix_config or settings.release.postfix_config,
            _time_a_start(settings, store_url, quiet=as_json),
        )
    if as_json:
        print(json.dumps([finding.to_dict() for finding in findings], indent=2))
    else:
        _show(stdout(), findings)
    if any(finding.status is Status.MISSING for finding in findings):
        raise typer.Exit(FAILED)


def _time_a_start(config: Config, store_url: str, *, quiet: bool) -> StartCost | None:
    """Build what typogate builds before it answers (its index, the store's rules and
    learned relationships: seconds, or tens of them for a large store), as a start does,
    and time it. Without the store (not made yet), the index alone; None when the store
    cannot be opened (the store's own check says why)."""
    from typogate import Guard
    from typogate.runtime import Runtime
    from typogate.store.engine import StoreMissing

    spinner = nullcontext() if quiet else stderr().status("timing a start of typogate...")
    with spinner:
        try:
            started = time.perf_counter()
            try:
                # As after an upgrade: no index kept by an earlier start is read.
                runtime = Runtime.open(config, store_url, keep_index=False)
            except StoreMissing:  # typogate serve makes it: its first start builds the index
                Guard(config)
                return StartCost(time.perf_counter() - started, 0)
            try:  # the longest start: learning from every relationship (an upgrade's)
                relationships = len(runtime.relearn().relationships)
            finally:
                runtime.close()
            return StartCost(time.perf_counter() - started, relationships)
        except TypogateError:
            return None


def _show(console: Console, findings: list[Finding]) -> None:
    """The findings in a table; the lines to run below it, whole, to copy."""
    fixes = [finding.fix for finding in findings if finding.fix]
    missing = sum(finding.status is Status.MISSING for finding in findings)
    table = Table(
        title=f"{missing} missing" if missing else "nothing missing",
        header_style="bold",
        show_lines=True,
    )
    table.add_column("check", no_wrap=True)
    table.add_column("", no_wrap=True)  # the status
    table.add_column("found", overflow="fold", ratio=1)
    for finding in findings:
        what = Text(finding.detail)
        if finding.fix:
            stop = "" if finding.detail.endswith(".") else "."
            what.append(f"{stop} Run line {fixes.index(finding.fix) + 1} below.", style="cyan")
        table.add_row(finding.check, Text(finding.status, style=_STYLE[finding.status]), what)
    console.print(table)
    for number, fix in enumerate(fixes, 1):
        console.print(f"{number}. {fix}", soft_wrap=True, highlight=False, markup=False)
