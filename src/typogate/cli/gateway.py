"""``typogate policy``, ``typogate milter``, ``typogate proxy``: the mail-flow adapters."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

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
from typogate.gateway.notice import NoticeSender
from typogate.gateway.policy_service import PolicyLimits, PolicyService
from typogate.policy import Config
from typogate.store.log_file import FileJournal

if TYPE_CHECKING:
    from typogate.store import Store

Mode = Annotated[
    str | None,
    typer.Option("--mode", help="enforce (default) or audit: decide and log, change nothing."),
]


def host_port(text: str, flag: str) -> tuple[str, int]:
    """``127.0.0.1:10040`` or ``[::1]:10040`` -> (host, port); exits 2 when malformed."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        stderr.print(f"[bold red]bad {flag}[/]: {text!r} (expected HOST:PORT)")
        raise typer.Exit(2)
    return host, int(port)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiosmtpd (the proxy) logs every SMTP command at INFO: that is --verbose's job.
    logging.getLogger("mail.log").setLevel(logging.DEBUG if verbose else logging.WARNING)


def _with_mode(config: Config, mode: str | None) -> Config:
    if mode is None:
        return config
    if mode not in ("enforce", "audit"):
        stderr.print(f"[bold red]bad --mode[/]: {mode!r} (enforce or audit)")
        raise typer.Exit(2)
    return config.model_copy(update={"mode": mode})


def settle() -> None:
    """Call once everything is built, before serving: the Guard's index and the libraries
    loaded at start-up are long-lived, so move them out of the garbage collector's sight
    (``gc.freeze``); otherwise every full collection walks them again while mail waits."""
    gc.collect()
    gc.freeze()


def with_release_secret(settings: Config, store: Store) -> Config:
    """``settings`` with the key that signs release links: ``release.secret``, or the one
    the store keeps (links work out of the box, and survive restarts)."""
    from typogate.store.quarantine import release_secret

    secret = release_secret(store, settings.release.secret)
    return settings.model_copy(
        update={"release": settings.release.model_copy(update={"secret": secret})}
    )


def _journal(settings: Config, db: str | None) -> FileJournal | Store:
    """The store named by --db, else the JSON-lines journal of the configuration."""
    if db is None:
        return FileJournal(settings.base_dir / settings.gateway.journal)
    return open_store(db, keep_allowed=settings.store.keep_allowed)


def notice_sender(config: Config) -> NoticeSender | None:
    """The notice sender the config names, or None."""
    if not config.gateway.notice_relay:
        return None
    host, port = host_port(config.gateway.notice_relay, "gateway.notice_relay")
    link = None
    if config.release.secret:
        from typogate.store.quarantine import link_signer, release_link

        signer = link_signer(config.release.secret)
        base_url = config.release.base_url

        def link(hold_id: str) -> str:
            return release_link(signer, hold_id, base_url)

    return NoticeSender(host, port, config.gateway.notice_from, link)


def _cannot_listen(what: str, address: str, error: OSError) -> NoReturn:
    """Say why a listener could not start (a port in use, say) and exit with status 1."""
    why = os.strerror(error.errno) if error.errno else str(error)
    stderr.print(f"[bold red]cannot run {what} on[/] {address}: {why}", highlight=False)
    raise typer.Exit(1)


async def _stopped() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _run_until_stopped(server: asyncio.AbstractServer) -> None:
    async with server:
        await _stopped()


@app.command()
def policy(
    listen: Annotated[
        str | None, typer.Option("--listen", help="HOST:PORT (default gateway.policy_listen).")
    ] = None,
    mode: Mode = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: Profile = None,
    max_connections: Annotated[
        int, typer.Option("--max-connections", min=1, help="Connections served at once.")
    ] = PolicyLimits().max_connections,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Record in this store (sqlite:///PATH, postgresql://...) "
            "instead of the gateway.journal file.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """Run the Postfix policy service (check_policy_service), one verdict per recipient.

    \b
    Postfix main.cf:
      smtpd_recipient_restrictions = ..., check_policy_service inet:127.0.0.1:10040
    See docs/postfix.md for fail-open and fail-closed set-ups.
    """
    settings = _with_mode(load_config(config, protect, known, profile), mode)
    host, port = host_port(listen or settings.gateway.policy_listen, "--listen")
    setup_logging(verbose)
    guard = build_guard(settings)
    journal = _journal(settings, db)
    if not isinstance(journal, FileJournal):
        from typogate.store.rule_table import RuleTable

        guard.use_rules(RuleTable(journal.engine).in_force(settings.rules))
        settings = with_release_secret(settings, journal)
    notices = notice_sender(settings)
    settle()

    async def run() -> None:
        service = PolicyService(
            guard,
            mode=settings.mode,
            journal=journal,
            notices=notices,
            limits=PolicyLimits(max_connections=max_connections),
        )
        try:
            server = await service.start(host, port)
        except OSError as error:
            _cannot_listen("the policy service", f"{host}:{port}", error)
        await _run_until_stopped(server)
        if notices is not None:
            await notices.drain()  # notices still being sent go out before the exit

    try:
        asyncio.run(run())
    finally:
        journal.close()


@app.command()
def milter(
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen", help="Milter socket, inet:PORT@HOST (default gateway.milter_listen)."
        ),
    ] = None,
    mode: Mode = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: Profile = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every message.")] = False,
) -> None:
    """Run the milter: whole messages, including mail submitted with sendmail(1).

    \b
    Postfix main.cf:
      non_smtpd_milters = inet:127.0.0.1:10041
      milter_default_action = accept      (fail-open; tempfail = fail-closed)
    """
    from typogate.gateway.milter import (  # libmilter
        MilterNotStarted,
        MilterSettings,
        block_stop_signals,
        run,
    )

    block_stop_signals()
    settings = _with_mode(load_config(config, protect, known, profile), mode)
    socket_spec = listen or settings.gateway.milter_listen
    if not socket_spec.startswith(("inet:", "inet6:", "unix:", "local:")):
        stderr.print(f"[bold red]bad --listen[/]: {socket_spec!r} (e.g. inet:10041@127.0.0.1)")
        raise typer.Exit(2)
    setup_logging(verbose)
    guard = build_guard(settings)
    journal = FileJournal(settings.base_dir / settings.gateway.journal)
    notices = notice_sender(settings)
    settle()
    try:
        run(MilterSettings(guard, settings.mode, journal, notices), socket_spec)
    except MilterNotStarted as error:
        _cannot_listen("the milter", socket_spec, error)
    finally:
        journal.close()


@app.command()
def proxy(
    listen: Annotated[
        str | None, typer.Option("--listen", help="HOST:PORT (default gateway.proxy_listen).")
    ] = None,
    next_hop: Annotated[
        str | None,
        typer.Option(
            "--next-hop", help="HOST:PORT every message is relayed to (gateway.next_hop)."
        ),
    ] = None,
    mode: Mode = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: Profile = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every session.")] = False,
) -> None:
    """Run the SMTP proxy: typo recipients refused at RCPT, the rest relayed to the next hop.

    DATA is answered only after the next hop accepted the message (no queue of its own).
    """
    from aiosmtpd.smtp import SMTP

    from typogate.gateway.proxy import ProxyHandler

    settings = _with_mode(load_config(config, protect, known, profile), mode)
    host, port = host_port(listen or settings.gateway.proxy_listen, "--listen")
    if not (next_hop or settings.gateway.next_hop):
        stderr.print("[bold red]--next-hop is required[/] (or gateway.next_hop in the config)")
        raise typer.Exit(2)
    hop = host_port(next_hop or settings.gateway.next_hop, "--next-hop")
    setup_logging(verbose)
    guard = build_guard(settings)
    journal = FileJournal(settings.base_dir / settings.gateway.journal)
    handler = ProxyHandler(guard, hop, mode=settings.mode, journal=journal)
    settle()

    async def run() -> None:
        # On the command's own event loop, not aiosmtpd's Controller thread: an address in
        # use fails at once here, where the Controller would wait out its ready timeout.
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(lambda: SMTP(handler, decode_data=False), host, port)
        except OSError as error:
            _cannot_listen("the SMTP proxy", f"{host}:{port}", error)
        logging.getLogger("typogate").info("proxy on %s:%d -> %s:%d", host, port, *hop)
        await _run_until_stopped(server)

    try:
        asyncio.run(run())
    finally:
        journal.close()


@app.command()
def serve(
    db: Db = DEFAULT_DB,
    mode: Mode = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: Profile = None,
    web: Annotated[
        bool, typer.Option("--web/--no-web", help="Also serve the dashboard and REST API.")
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """Run typogate's main job: policy service, milter and web interface on one store.

    With no configuration: the built-in us-gov profile, the policy service on
    127.0.0.1:10040, the milter on inet:10041@127.0.0.1, the dashboard and REST API on
    http://127.0.0.1:8025 (the first start prints the admin account's password once), and
    verdicts, holds, learned correspondents, accounts and rules in ./typogate.db (SQLite).
    Stop with Ctrl-C or SIGTERM.
    """
    import threading

    from typogate.cli.web import start_web, web_context
    from typogate.gateway.milter import (
        MilterNotStarted,
        MilterSettings,
        block_stop_signals,
        run,
    )
    from typogate.store.database import shown_url

    block_stop_signals()
    settings = _with_mode(load_config(config, protect, known, profile), mode)
    host, port = host_port(settings.gateway.policy_listen, "gateway.policy_listen")
    setup_logging(verbose)
    guard = build_guard(settings)
    store = open_store(db, keep_allowed=settings.store.keep_allowed)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    unbound: list[OSError] = []
    web_server = None

    def policy_thread() -> None:
        asyncio.set_event_loop(loop)
        service = PolicyService(guard, mode=settings.mode, journal=store, notices=notices)
        try:
            loop.run_until_complete(service.start(host, port))
        except OSError as error:
            unbound.append(error)
            return
        finally:
            started.set()
        loop.run_forever()

    thread = threading.Thread(target=policy_thread, name="policy", daemon=True)
    # From here on every way out, a port in use included, closes the store: what it has
    # queued is written, and its writer process stops with it.
    try:
        settings = with_release_secret(settings, store)
        learned = store.correspondent_counts()
        guard.learn(learned)
        ctx = web_context(store, settings, guard)  # also applies the stored rules to the guard
        notices = notice_sender(settings)
        thread.start()
        started.wait()
        if unbound:
            _cannot_listen("the policy service", f"{host}:{port}", unbound[0])
        logging.getLogger("typogate").info(
            "store: %s (%d learned correspondent domains)", shown_url(db), len(learned)
        )
        web_server = start_web(ctx, settings.web.listen)[0] if web else None
        settle()
        # libmilter owns the main thread and returns on SIGINT/SIGTERM.
        milter_listen = settings.gateway.milter_listen
        try:
            run(MilterSettings(guard, settings.mode, store, notices), milter_listen)
        except MilterNotStarted as error:
            _cannot_listen("the milter", milter_listen, error)
    finally:
        if web_server is not None:
            web_server.should_exit = True
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        store.close()


@app.command()
def learn(
    paths: Annotated[list[Path], typer.Argument(help="Postfix mail logs (plain or .gz).")],
    db: Db = DEFAULT_DB,
) -> None:
    """Seed the learned correspondents from existing Postfix logs.

    Every delivered message counts towards its recipient domain: a domain this organisation
    really writes to stops being flagged, and its near-twins become suspicious.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

    from typogate.audit.postfix_log import sent_by_domain
    from typogate.audit.sources import AuditInputError, plan, read_chunk
    from typogate.store.database import shown_url

    try:
        parts = plan(paths, "postfix")
    except AuditInputError as error:
        stderr.print(f"[bold red]cannot read[/]: {error}")
        raise typer.Exit(2) from None
    store = open_store(db, writer=False)
    totals: dict[str, int] = {}
    with Progress(
        TextColumn("[bold]learning[/]"), BarColumn(), TransferSpeedColumn(), console=stderr
    ) as progress:
        task = progress.add_task("learn", total=sum(part.size for part in parts))
        for part in parts:
            for domain, count in sent_by_domain(read_chunk(part)).items():
                totals[domain] = totals.get(domain, 0) + count
            progress.advance(task, part.size)
    store.learn({("*", domain): count for domain, count in totals.items()})
    store.close()
    stderr.print(
        f"learned {sum(totals.values()):,} deliveries to {len(totals):,} domains "
        f"into {shown_url(db)}"
    )
