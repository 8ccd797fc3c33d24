"""``typogate sink``: run the sink, print its DNS records, print and send its reports."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from typogate.cli import app
from typogate.cli.options import (
    ConfigFile,
    Db,
    KnownFiles,
    ProfileName,
    ProtectFiles,
)
from typogate.cli.startup import (
    FAILED,
    USAGE,
    fail,
    failing_cleanly,
    listen_address,
    load_config,
    open_runtime,
    setup_logging,
    stdout,
    with_ascii,
)
from typogate.config import Config
from typogate.vocabulary import Profile

if TYPE_CHECKING:
    from typogate.gateway.sink.reports import Delivery
    from typogate.store.sink_log import SinkHistory

sink = typer.Typer(
    name="sink",
    help="Answer for look-alike domains: refuse misdirected mail with the address the sender "
    "meant, keep metadata only, report to the intended organisation (docs/sink.md).",
    no_args_is_help=True,
)
app.add_typer(sink)

log = logging.getLogger("typogate")
_REPORT_CHECK_SECONDS = 3600.0  # how often a running sink looks for reports to send
# The key of the local-part hash when the configuration sets none (kept in the store, so
# every instance on that store hashes alike and the key survives restarts).
_KEY_SECRET = "sink-local-part"


def _settings(
    config: Path | None,
    protect: list[Path] | None = None,
    known: list[Path] | None = None,
    profile: Profile | None = None,
    *,
    serving: bool = True,
) -> Config:
    """The configuration; exits with status 2 on a bad one, or (``serving``) when its
    ``[sink]`` section names nothing to serve."""
    loaded = load_config(config, protect, known, profile)
    if serving and not loaded.sink.serve:
        fail(
            "configuration error",
            "sink.serve names no look-alike domain or suffix to answer for (see docs/sink.md)",
            USAGE,
        )
    return loaded


@sink.command()
def run(
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen", metavar="HOST:PORT", help="Where to listen (default sink.listen)."
        ),
    ] = None,
    db: Db = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: ProfileName = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log typogate's debug lines.")
    ] = False,
) -> None:
    """Run the sink: an SMTP server that refuses every recipient at RCPT.

    No message content is ever received. A likely typo of a domain that the
    served organisations protect gets the address the sender meant, anything
    else an ordinary 550 5.1.1. What was answered is kept as metadata in --db
    (several sinks may share one PostgreSQL); the daily reports go to the
    contacts in sink.reports. Stop with Ctrl-C or SIGTERM.

    \b
    550 5.1.2 <john@army.ml>: army.ml is not army.mil.
      Did you mean john@army.mil? Nothing was delivered or kept.
    """
    from typogate.gateway import controller
    from typogate.gateway.admission import Admission
    from typogate.gateway.sink.decision import SinkPolicy
    from typogate.gateway.sink.records import SinkRecorder
    from typogate.gateway.sink.smtp import SinkHandler, start
    from typogate.store.sink_log import RecordBudget, SinkLog

    controller.block_stop_signals()
    settings = _settings(config, protect, known, profile)
    host, port = listen_address(listen or settings.sink.listen, "--listen")
    setup_logging(verbose, settings.limits)
    # aiosmtpd logs every sender and recipient at INFO: the sink keeps no addresses, so
    # neither do its logs, even with --verbose.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # The sink keeps its own records (SinkLog).
    runtime = open_runtime(settings, db, required=True, create=True)
    store = runtime.store
    assert store is not None
    sink_log = None
    try:
        with failing_cleanly():
            policy = SinkPolicy(runtime.guard, settings.sink.serve)
            key = settings.sink.key or store.secret(_KEY_SECRET)
            recorder = SinkRecorder(key.encode(), keep_addresses=settings.sink.keep_addresses)
            limits = settings.limits
            sink_log = SinkLog(
                store.engine,
                batch_seconds=settings.sink.batch_seconds,
                retention_days=settings.sink.retention_days,
                budget=RecordBudget(
                    limits.sink_records_per_hour, limits.sink_records_per_client_hour
                ),
            ).start()
            handler = SinkHandler(
                policy, recorder, sink_log, forwarding_sessions=limits.sink_forwarding_sessions
            )
            admission = Admission.within_open_files(
                "sink", limits.sink_connections, limits.sink_connections_per_client
            )
            history = store.sink

            async def open_server(sock: socket.socket | None) -> asyncio.AbstractServer:
                server = await start(handler, admission, host, port, settings.sink.hostname, sock)
                served = ", ".join(entry.target for entry in settings.sink.serve)
                log.info("sink on %s:%d for %s", host, port, served)
                # On the listener's own loop; it ends with the loop when the sink stops.
                asyncio.get_running_loop().create_task(_send_reports(history, settings))
                return server

            listener = controller.AsyncioListener("the sink", host, port, open_server)
            runtime.settle()
            controller.serve([runtime.watch(), listener])
    finally:
        if sink_log is not None:
            sink_log.close()
        runtime.close()


async def _send_reports(history: SinkHistory, settings: Config) -> None:
    """Send the reports that are due, hourly from the configured hour of the UTC day on."""
    from sqlalchemy.exc import SQLAlchemyError

    from typogate.gateway.sink.reports import send_due

    if not (settings.sink.reports and settings.sink.report_relay):
        return
    while True:
        if datetime.now(UTC).hour >= settings.sink.report_hour:
            try:
                await send_due(history, settings.sink)
            except SQLAlchemyError as error:  # the store is down: next hour
                log.error("sink: cannot send reports now: %s", error)
        await asyncio.sleep(_REPORT_CHECK_SECONDS)


@sink.command()
def records(
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per record.")] = False,
) -> None:
    """Print the DNS records that implement the sink's policy, as zone-file lines.

    \b
    refuse, forward  MX 10 <sink.hostname>.  the sink explains, or forwards
    null             MX 0 .  (RFC 7505)      senders fail without connecting
    A whole suffix gets wildcard records (*.ml): they cover only unregistered
    names. The sink's hostname needs an A/AAAA record of its own.
    """
    from typogate.gateway.sink.zone import records as zone_records

    settings = _settings(config)
    with failing_cleanly():
        found = zone_records(settings.sink.serve, settings.sink.hostname)
    if as_json:
        for record in found:
            line = {"owner": record.owner, "ttl": record.ttl, "type": record.type}
            _print_json({**line, "data": record.data, "note": record.note})
        return
    print(f"; typogate sink records for {settings.sink.hostname}")
    for record in found:
        print(record)


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"bad {flag}", f"{text!r} (expected a date, YYYY-MM-DD)", USAGE)


@sink.command()
def report(
    since: Annotated[
        str, typer.Option("--since", metavar="DAY", help="First day (YYYY-MM-DD, UTC).")
    ],
    until: Annotated[
        str | None,
        typer.Option(
            "--until", metavar="DAY", help="Last day (default today).", show_default=False
        ),
    ] = None,
    db: Db = None,
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="The reports as one JSON list.")] = False,
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="Mail each registered contact its daily reports (days up to yesterday not "
            "sent yet) through sink.report_relay.",
        ),
    ] = False,
) -> None:
    """Print (or mail) the reports of misdirected mail per intended domain.

    Each report counts messages per look-alike, sending domain, network and
    day. Exit status 1 when a report could not be sent.

    \b
    typogate sink report --since 2026-11-01            a table for people
    typogate sink report --since 2026-11-01 --json     the reports as JSON
    typogate sink report --since 2026-11-01 --send     mail the daily reports
    """
    from typogate.gateway.sink.reports import send_due
    from typogate.store.sink_log import ReportState

    first = _day(since, "--since")
    last = _day(until, "--until") if until is not None else datetime.now(UTC).date()
    if last < first:
        fail("bad --until", "it is before --since", USAGE)
    settings = _settings(config, serving=False)
    runtime = open_runtime(settings, db, required=True)
    assert runtime.store is not None
    try:
        history = runtime.store.sink
        if send:
            yesterday = datetime.now(UTC).date() - timedelta(days=1)
            days = [
                first + timedelta(days=n) for n in range((min(last, yesterday) - first).days + 1)
            ]
            if not (settings.sink.report_relay and settings.sink.reports):
                fail("nothing to send to", "set sink.report_relay and sink.reports", USAGE)
            deliveries = asyncio.run(send_due(history, settings.sink, days))
            _print_deliveries(deliveries, as_json)
            if any(d.state is ReportState.FAILED for d in deliveries):
                raise typer.Exit(FAILED)
            return
        found = history.intended_reports(first, last)
    finally:
        runtime.close()
    if as_json:
        _print_json([r.to_json(settings.sink.hostname) for r in found])
        return
    table = Table(title=f"Misdirected mail, {first} to {last} (UTC)")
    # Folded, never cut: a cut domain is another domain.
    for column in ("intended", "messages", "recipients", "top look-alike", "top sending domain"):
        table.add_column(
            column,
            justify="right" if column in ("messages", "recipients") else "left",
            overflow="fold",
        )
    for found_report in found:
        lookalike, n = found_report.by_lookalike.most_common(1)[0]
        sender, m = found_report.by_sender_domain.most_common(1)[0]
        table.add_row(
            with_ascii(found_report.intended),
            f"{found_report.messages:,}",
            f"{found_report.recipients:,}",
            with_ascii(lookalike).append(f" ({n:,})"),
            # Whatever a stranger wrote after MAIL FROM's @: shown, never played.
            with_ascii(sender or "(bounces)").append(f" ({m:,})"),
        )
    stdout().print(table)


def _print_deliveries(deliveries: list[Delivery], as_json: bool) -> None:
    if as_json:
        _print_json(
            [
                {
                    "intended": d.intended,
                    "day": d.day,
                    "contact": d.contact,
                    "messages": d.messages,
                    "state": d.state.value if d.state is not None else "taken",
                    "detail": d.detail,
                }
                for d in deliveries
            ]
        )
        return
    from typogate.domains import printable_form

    table = Table(title=f"{len(deliveries)} report(s)")
    for column in ("intended", "day", "contact", "messages", "state", "detail"):
        table.add_column(
            column, overflow="fold", justify="right" if column == "messages" else "left"
        )
    for d in deliveries:
        state = d.state.value if d.state is not None else "taken"
        table.add_row(
            with_ascii(d.intended),
            d.day,
            with_ascii(d.contact),
            str(d.messages),
            state,
            printable_form(d.detail),  # the words of a server that refused the report
        )
    stdout().print(table)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
