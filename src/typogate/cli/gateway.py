"""``typogate serve``, ``policy``, ``milter``, ``proxy``: the mail-flow adapters.

Each opens the runtime (recording to the store given with ``--db``, else to the journal
file), builds its adapter on the runtime's gatekeeper, and hands the listeners to the
gateway's controller, which serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from typogate.cli import app
from typogate.cli.options import (
    ConfigFile,
    Db,
    KnownFiles,
    ModeChoice,
    OptionalDb,
    ProfileName,
    ProtectFiles,
    Verbose,
)
from typogate.cli.startup import (
    USAGE,
    announce_first_admin,
    fail,
    failing_cleanly,
    listen_address,
    load_config,
    open_runtime,
    read_config,
    setup_logging,
)
from typogate.gateway import controller
from typogate.gateway.admission import ALONE, MILTER, Neighbours
from typogate.gateway.policy_service import PolicyLimits
from typogate.vocabulary import Adapter

if TYPE_CHECKING:
    from typogate.gateway.controller import Service
    from typogate.gateway.milter import MilterListener
    from typogate.runtime import Runtime

_MILTER_SOCKETS = ("inet:", "inet6:", "unix:", "local:")


def _policy_listener(
    runtime: Runtime,
    listen: str,
    max_connections: int | None,
    flag: str = "--listen",
    beside: Neighbours = ALONE,
) -> Service:
    from typogate.gateway.policy_service import PolicyService

    host, port = listen_address(listen, flag)
    limits = PolicyLimits.of(runtime.config.limits, max_connections)
    service = PolicyService(runtime.gatekeeper(Adapter.POLICY), limits=limits, beside=beside)
    return controller.AsyncioListener(
        "the policy service", host, port, lambda sock: service.start(host, port, sock)
    )


def _milter(runtime: Runtime, socket_spec: str) -> MilterListener:
    """libmilter's loop as a service; a clear error without the milter package."""
    if not socket_spec.startswith(_MILTER_SOCKETS):
        fail("bad --listen", f"{socket_spec!r} (e.g. inet:10041@127.0.0.1)", USAGE)
    try:
        from typogate.gateway import milter
    except ImportError as error:  # pymilter (and Debian's libmilter) are an optional extra
        fail(
            "cannot run the milter",
            f"{error.name or 'pymilter'} is not installed: pip install 'typogate[milter]' "
            "(it builds against Debian's libmilter-dev), or run serve --no-milter",
        )
    return milter.MilterListener(runtime.gatekeeper(Adapter.MILTER), socket_spec)


def _serve(runtime: Runtime, services: list[Service]) -> None:
    """Serve until stopped, reloading the configuration on SIGHUP; every way out, an
    address in use included, closes the runtime: what the store has queued is written and
    its writer process stops with it."""
    try:
        with failing_cleanly():
            if runtime.store is not None:
                runtime.finish_hold_actions()
                services.insert(0, runtime.watch())
            runtime.settle()
            controller.serve(services, reload=runtime.reload)
    finally:
        runtime.close()
    for service in services:  # a milter that stopped on its own stopped the rest
        if failure := getattr(service, "failure", None):
            fail("stopped", failure)


@app.command()
def policy(
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen", metavar="HOST:PORT", help="Where to listen (default gateway.policy_listen)."
        ),
    ] = None,
    mode: ModeChoice = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: ProfileName = None,
    max_connections: Annotated[
        int | None,
        typer.Option(
            "--max-connections",
            min=1,
            metavar="N",
            help="Connections served at once (default 512: policy_connections in \\[limits]).",
        ),
    ] = None,
    db: OptionalDb = None,
    verbose: Verbose = False,
) -> None:
    """Run the Postfix policy service (check_policy_service), one verdict per recipient.

    \b
    Postfix main.cf:
      smtpd_recipient_restrictions = ...,
        check_policy_service inet:127.0.0.1:10040
    See docs/postfix.md for fail-open and fail-closed set-ups.
    """
    controller.block_stop_signals()
    flags = (config, protect, known, profile, mode)
    settings = load_config(*flags)
    setup_logging(verbose, settings.limits)
    runtime = open_runtime(settings, db, recording=True, reread=lambda: read_config(*flags))
    with failing_cleanly():
        listener = _policy_listener(
            runtime, listen or settings.gateway.policy_listen, max_connections
        )
    _serve(runtime, [listener])


@app.command()
def milter(
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="SOCKET",
            help="Milter socket, inet:PORT@HOST (default gateway.milter_listen).",
        ),
    ] = None,
    mode: ModeChoice = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: ProfileName = None,
    db: OptionalDb = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every message.")] = False,
) -> None:
    """Run the milter: whole messages, including mail submitted with sendmail(1).

    \b
    Postfix main.cf:
      non_smtpd_milters = inet:127.0.0.1:10041
      milter_default_action = accept      (fail-open; tempfail = fail-closed)
    """
    controller.block_stop_signals()
    flags = (config, protect, known, profile, mode)
    settings = load_config(*flags)
    setup_logging(verbose, settings.limits)
    runtime = open_runtime(settings, db, recording=True, reread=lambda: read_config(*flags))
    with failing_cleanly():
        listener = _milter(runtime, listen or settings.gateway.milter_listen)
    _serve(runtime, [listener])


@app.command()
def proxy(
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen", metavar="HOST:PORT", help="Where to listen (default gateway.proxy_listen)."
        ),
    ] = None,
    next_hop: Annotated[
        str | None,
        typer.Option(
            "--next-hop",
            metavar="HOST:PORT",
            help="Where every message is relayed to (gateway.next_hop).",
        ),
    ] = None,
    mode: ModeChoice = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: ProfileName = None,
    db: OptionalDb = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every session.")] = False,
) -> None:
    """Run the SMTP proxy: typo recipients refused at RCPT, the rest relayed to the next hop.

    DATA is answered only after the next hop accepted the message (no queue of
    its own).
    """
    from typogate.gateway.proxy import ProxyHandler, ProxyLimits

    flags = (config, protect, known, profile, mode)
    settings = load_config(*flags)
    host, port = listen_address(listen or settings.gateway.proxy_listen, "--listen")
    if not (next_hop or settings.gateway.next_hop):
        fail("--next-hop is required", "or gateway.next_hop in the config", USAGE)
    hop = listen_address(next_hop or settings.gateway.next_hop, "--next-hop")
    controller.block_stop_signals()
    setup_logging(verbose, settings.limits)
    runtime = open_runtime(settings, db, recording=True, reread=lambda: read_config(*flags))
    with failing_cleanly():
        handler = ProxyHandler(
            runtime.gatekeeper(Adapter.PROXY), hop, limits=ProxyLimits.of(settings.limits)
        )

    async def open_server(sock):  # type: ignore[no-untyped-def]
        import asyncio
        import logging

        from typogate.gateway.activation import server_arguments

        loop = asyncio.get_running_loop()
        where = server_arguments(host, port, sock)
        server = await loop.create_server(handler.session, **where)
        logging.getLogger("typogate").info("proxy on %s:%d -> %s:%d", host, port, *hop)
        return server

    listener = controller.AsyncioListener("the SMTP proxy", host, port, open_server)
    _serve(runtime, [listener])


@app.command()
def serve(
    db: Db = None,
    mode: ModeChoice = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: ProfileName = None,
    web: Annotated[
        bool, typer.Option("--web/--no-web", help="Also serve the dashboard and REST API.")
    ] = True,
    with_milter: Annotated[
        bool,
        typer.Option("--milter/--no-milter", help="Also serve the milter (needs pymilter)."),
    ] = True,
    policy_listen: Annotated[
        str | None,
        typer.Option(
            "--policy-listen",
            metavar="HOST:PORT",
            help="The policy service's HOST:PORT (default gateway.policy_listen).",
            show_default=False,
        ),
    ] = None,
    milter_listen: Annotated[
        str | None,
        typer.Option(
            "--milter-listen",
            metavar="SOCKET",
            help="The milter's socket, inet:PORT@HOST (default gateway.milter_listen).",
            show_default=False,
        ),
    ] = None,
    web_listen: Annotated[
        str | None,
        typer.Option(
            "--web-listen",
            metavar="HOST:PORT",
            help="The web interface's HOST:PORT (default web.listen).",
            show_default=False,
        ),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Run typogate's main job: policy service, milter and web interface on one store.

    With no configuration: the built-in us-gov profile, the policy service on
    127.0.0.1:10040, the milter on inet:10041@127.0.0.1, the dashboard and REST
    API on http://127.0.0.1:8025 (the first start prints the admin account's
    password once), and verdicts, holds, learned correspondents, accounts and
    rules in the store (store.url, else ./typogate.db). SIGHUP reloads the
    configuration; stop with Ctrl-C or SIGTERM.
    """
    controller.block_stop_signals()
    flags = (config, protect, known, profile, mode)
    settings = load_config(*flags)
    setup_logging(verbose, settings.limits)
    runtime = open_runtime(
        settings, db, recording=True, required=True, reread=lambda: read_config(*flags)
    )
    services: list[Service] = []
    try:
        with failing_cleanly():
            # The milter first: the moment its libmilter signal thread starts, before any
            # other listener opens (controller).
            if with_milter:
                services.append(_milter(runtime, milter_listen or settings.gateway.milter_listen))
            # One process, one open-file limit: each listener fits its sessions beside
            # the others' (a descriptor a connection, for all three).
            limits = settings.limits
            milter_side = MILTER if with_milter else ALONE
            web_side = (Neighbours(1, limits.web_connections) if web else ALONE) + milter_side
            policy_at = policy_listen or settings.gateway.policy_listen
            services.append(
                _policy_listener(runtime, policy_at, None, "--policy-listen", beside=web_side)
            )
            if web:
                from typogate.web.server import WebServer

                host, port = listen_address(web_listen or settings.web.listen, "--web-listen")
                announce_first_admin(runtime)
                policy_side = Neighbours(1, limits.policy_connections) + milter_side
                services.append(WebServer(runtime, host, port, beside=policy_side))
    except BaseException:
        runtime.close()
        raise
    _serve(runtime, services)
