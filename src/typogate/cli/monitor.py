"""``typogate monitor``: which look-alikes of the protected domains exist and take mail."""

from __future__ import annotations

import io
import ipaddress
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from typogate.cli import app
from typogate.cli.options import ConfigFile, Db, KnownFiles, ProfileName, ProtectFiles
from typogate.cli.startup import (
    FAILED,
    USAGE,
    fail,
    failing_cleanly,
    load_config,
    open_runtime,
    stderr,
    stdout,
    with_ascii,
)
from typogate.config import Config
from typogate.domains import Domain, InvalidAddress, parse_domain
from typogate.monitor import (
    Engine,
    Finding,
    Lookup,
    MailFacts,
    MailState,
    MonitorInputError,
    MonitorRun,
    Nameserver,
    Probe,
    Settings,
    run_monitor,
)
from typogate.monitor.alerts import AlertError, MailAlert, post_webhook, send_mail
from typogate.monitor.exports import Export, write
from typogate.monitor.lookalikes import DEFAULT_COVERAGE
from typogate.monitor.mail_state import NameserverError, system_nameservers
from typogate.monitor.snapshots import Change, changes, kept
from typogate.policy.lists import Listed, domain_lists
from typogate.store.records import SeenLookAlike


@app.command()
def monitor(
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: ProfileName = None,
    nameserver: Annotated[
        list[str] | None,
        typer.Option(
            "--nameserver",
            metavar="ADDRESS",
            help="DNS server to ask, HOST[:PORT] (an IP address). Repeatable. "
            "Default: this machine's resolvers.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per look-alike, a line each.")
    ] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="Also the look-alikes that do not exist (nxdomain).")
    ] = False,
    db: Db = None,
    coverage: Annotated[
        float,
        typer.Option(
            "--coverage",
            metavar="SHARE",
            min=0.01,
            max=1.0,
            help="Keep the likeliest look-alikes until they hold this share of the "
            "probability mass of each protected domain.",
        ),
    ] = DEFAULT_COVERAGE,
    export: Annotated[
        Export | None,
        typer.Option(
            "--export",
            help="Write a Postfix access map or CSV (to --out, else stdout) instead of the table.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="File for --export.", show_default=False),
    ] = None,
    probe_smtp: Annotated[
        bool,
        typer.Option(
            "--probe-smtp",
            help="Ask each look-alike's mail server whether it accepts any recipient. "
            "The probed side sees it; off by default.",
        ),
    ] = False,
    probe_port: Annotated[
        int,
        typer.Option(
            "--probe-port", min=1, max=65535, metavar="PORT", help="SMTP port for --probe-smtp."
        ),
    ] = 25,
    keep_days: Annotated[
        int,
        typer.Option(
            "--keep-days",
            min=1,
            metavar="DAYS",
            help="Forget runs older than this, but not the newest state of each look-alike.",
        ),
    ] = 90,
    probe_private: Annotated[
        bool,
        typer.Option(
            "--probe-private",
            help="Let --probe-smtp reach mail hosts at loopback and private addresses too "
            "(a lab). By default a look-alike pointing there is not probed: not_public.",
        ),
    ] = False,
    own_network: Annotated[
        list[str] | None,
        typer.Option(
            "--own-network",
            metavar="NETWORK",
            help="Your organisation's own address range, e.g. 198.51.100.0/24. "
            "Repeatable. --probe-smtp never connects there: a look-alike pointing only "
            "there is own_network.",
            show_default=False,
        ),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            metavar="URL",
            help="POST the changes as JSON here, when there are any.",
            show_default=False,
        ),
    ] = None,
    mail_to: Annotated[
        str | None,
        typer.Option(
            "--mail-to",
            metavar="ADDRESS",
            help="Mail the changes here, when there are any.",
            show_default=False,
        ),
    ] = None,
    mail_relay: Annotated[
        str,
        typer.Option(
            "--mail-relay", metavar="HOST:PORT", help="The mail server that relays the alert mail."
        ),
    ] = "127.0.0.1:25",
    mail_from: Annotated[
        str, typer.Option("--mail-from", metavar="ADDRESS", help="Sender of the alert mail.")
    ] = "typogate@localhost",
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency", min=1, max=4096, metavar="N", help="DNS questions in flight at once."
        ),
    ] = 256,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.05, metavar="SECONDS", help="Seconds to wait for one DNS answer."
        ),
    ] = 2.0,
    tries: Annotated[
        int, typer.Option("--tries", min=1, max=10, metavar="N", help="Tries per DNS question.")
    ] = 3,
    dask: Annotated[
        bool, typer.Option("--dask", help="Run the partitions on Dask (see --scheduler).")
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="URL",
            help="Dask scheduler, tcp://HOST:PORT (implies --dask; else a LocalCluster).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, metavar="N", help="Processes here, or LocalCluster workers."
        ),
    ] = None,
) -> None:
    """Which look-alikes of your domains exist, and would they take your mail?

    \b
    For each protected domain, the look-alikes typogate's error model finds most
    likely (suffix swaps like army.ml, dropped dots, homoglyphs, IDN forms, ...),
    ranked, with their mail state in DNS: nxdomain, no_mail, null_mx, mx (with its
    hosts) or a_only (mail goes to its address), and SPF/DMARC. Each run is a
    snapshot in the store; the output says what is new, changed or gone since the
    last one, and --webhook / --mail-to alert only when something changed.

    \b
    Examples:
      typogate monitor --protect protected.txt
      typogate monitor --protect protected.txt --json --nameserver 192.0.2.53
      typogate monitor --profile us-gov --export access --out lookalikes.access
      typogate monitor --protect big.txt --scheduler tcp://10.0.0.5:8786

    Exit status 0 when it ran, 1 when it failed (store, alert), 2 for bad usage.
    """
    try:
        servers = (
            tuple(Nameserver.parse(text) for text in nameserver)
            if nameserver
            else system_nameservers()
        )
        lookup = Lookup(servers, concurrency=concurrency, timeout=timeout, tries=tries)
    except NameserverError as error:
        fail("bad --nameserver", str(error), USAGE)
    try:
        own = tuple(ipaddress.ip_network(text, strict=False) for text in own_network or ())
    except ValueError as error:
        fail("bad --own-network", f"{error} (an address or ADDRESS/PREFIX)", USAGE)
    relay = _relay(mail_relay) if mail_to else None
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        fail("bad --webhook", f"{webhook!r} (an http:// or https:// URL)", USAGE)
    if out is not None and export is None:
        fail("--out needs --export", "access or csv", USAGE)
    settings_config = load_config(config, protect, known, profile)
    protected, real = _domains(settings_config)
    if not protected:
        fail("nothing to monitor", "no protected domain (see --protect)", USAGE)
    runtime = open_runtime(settings_config, db, required=True, create=True)
    try:
        assert runtime.store is not None  # a store URL was given: the runtime opened it
        snapshots = runtime.store.look_alikes
        previous = {
            domain: MailFacts(MailState(seen.state), seen.mx, seen.spf, seen.dmarc)
            for domain, seen in snapshots.latest().items()
        }
        answers = [probe.value for probe in Probe if probe.answered]
        probed = {domain: Probe(said) for domain, said in snapshots.last_probes(answers).items()}
        settings = Settings(
            lookup,
            coverage=coverage,
            real=real,
            everything=everything,
            probe_smtp=probe_smtp,
            probe_port=probe_port,
            probe_private=probe_private,
            own_networks=own,
        )
        started = datetime.now(UTC)
        dask = dask or scheduler is not None
        run = _run(protected, settings, previous, probed, dask, scheduler, workers)
        snapshots.record(
            started,
            datetime.now(UTC),
            run.protected,
            run.asked,
            [_seen(finding) for finding in kept(run.findings)],
        )
        snapshots.forget(started - timedelta(days=keep_days))
    finally:
        runtime.close()
    _show(run, as_json, export, out)
    _alert(run.findings, webhook, mail_to, relay, mail_from)


def _relay(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        fail("bad --mail-relay", f"{text!r} (HOST:PORT)", USAGE)
    return host.strip("[]"), int(port)


def _domains(config: Config) -> tuple[list[str], frozenset[str]]:
    """The protected domains in list order, and every real domain (protected and known, in
    A-label form): those are never look-alikes."""
    with failing_cleanly():
        lists = domain_lists(config)

    def parsed(listed: Listed) -> Domain:
        try:
            return parse_domain(listed.text)
        except InvalidAddress as error:
            fail(f"bad domain {listed.origin}", str(error), USAGE)

    protected = [parsed(listed) for listed in lists.protected]
    real = {domain.ascii for domain in protected}
    real.update(parsed(listed).ascii for listed in lists.known)
    return list(dict.fromkeys(domain.unicode for domain in protected)), frozenset(real)


def _run(
    protected: list[str],
    settings: Settings,
    previous: dict[str, MailFacts],
    probed: dict[str, Probe],
    dask: bool,
    scheduler: str | None,
    workers: int | None,
) -> MonitorRun:
    console = stderr()
    with Progress(
        TextColumn("[bold]monitoring[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("protected domains"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("monitor", total=len(protected))
        try:
            return run_monitor(
                protected,
                settings,
                previous,
                probed=probed,
                engine=Engine.DASK if dask else Engine.LOCAL,
                workers=workers,
                scheduler=scheduler,
                progress=lambda done: progress.advance(task, done),
            )
        except MonitorInputError as error:
            fail("cannot monitor", str(error), USAGE)


def _seen(finding: Finding) -> SeenLookAlike:
    look_alike, facts = finding.observation.look_alike, finding.observation.facts
    probe = finding.observation.probe
    return SeenLookAlike(
        domain=look_alike.ascii,
        display=look_alike.domain,
        intended=look_alike.intended,
        probability=look_alike.probability,
        rank=look_alike.rank,
        state=facts.state.value,
        mx=facts.mx,
        spf=facts.spf,
        dmarc=facts.dmarc,
        probe=probe.value if probe is not None else None,
        change=finding.change.value,
    )


def _show(run: MonitorRun, as_json: bool, export: Export | None, out: Path | None) -> None:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8")  # for machines: UTF-8, whatever the locale
    if export is not None:
        if out is None:
            write(export, run.findings, sys.stdout)
        else:
            with out.open("w", encoding="utf-8", newline="") as file:
                count = write(export, run.findings, file)
            stderr().print(f"{count} look-alikes written to {out}", highlight=False)
        return
    if as_json:
        for finding in run.findings:
            print(json.dumps(finding.to_dict(), ensure_ascii=False))
        return
    console = stdout()
    title = (
        f"typogate monitor: {run.protected} protected domain(s), "
        f"{run.asked:,} look-alikes asked in {run.seconds:.1f} s"
    )
    if not run.findings:
        console.print(f"{title}\nNone of them exists.")
        return
    probed = any(f.observation.probe is not None for f in run.findings)
    # No box edges or column rules, as check's and holds' tables: eight more columns of
    # room at 80, for the mail hosts and an A-label beneath its look-alike.
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, header_style="bold", show_edge=False
    )
    # Domains whole, never cut (a cut look-alike is another domain); the mail hosts go
    # under the state they belong to, so that the table fits 80 columns.
    table.add_column("look-alike", no_wrap=True)
    table.add_column("for", no_wrap=True)
    table.add_column("p", justify="right", no_wrap=True)
    table.add_column("rank", justify="right", no_wrap=True)
    table.add_column("state, hosts", overflow="fold")
    table.add_column("spf/dmarc", no_wrap=True)
    table.add_column("change", no_wrap=True)
    if probed:
        table.add_column("probe")
    styles = {Change.NEW: "bold red", Change.CHANGED: "yellow", Change.GONE: "green"}
    for finding in run.findings:
        look_alike, facts = finding.observation.look_alike, finding.observation.facts
        signs = " ".join(
            name for name, seen in (("spf", facts.spf), ("dmarc", facts.dmarc)) if seen
        )
        style = styles.get(finding.change)
        row: list[str | Text] = [
            with_ascii(look_alike.domain),
            look_alike.intended,
            f"{look_alike.probability:.2g}",
            str(look_alike.rank),
            "\n".join((facts.state.value, *facts.mx)),
            signs,
            Text(finding.change.value, style=style or ""),
        ]
        if probed:
            probe = finding.observation.probe
            row.append(probe.value if probe is not None else "")
        table.add_row(*row)
    console.print(table)


def _alert(
    findings: list[Finding],
    webhook: str | None,
    mail_to: str | None,
    relay: tuple[str, int] | None,
    mail_from: str,
) -> None:
    changed = changes(findings)
    if not changed or not (webhook or mail_to):
        return
    try:
        if webhook:
            post_webhook(webhook, changed)
        if mail_to and relay is not None:
            send_mail(MailAlert(mail_to, relay[0], relay[1], mail_from), changed)
    except AlertError as error:
        fail("alert not sent", str(error), FAILED)
