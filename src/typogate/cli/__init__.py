"""The ``typogate`` command. Thin: parse flags, call the parts, print results.

Each part registers its commands from its own module here (check, policy, milter, proxy,
serve, web, rules, learn, audit, doctor), filed in ``COMMAND_MODULES``; exit status 0 when
a command ran, 1 when it failed, 2 for bad usage or config.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

import typer

app = typer.Typer(
    name="typogate",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _typogate() -> None:
    """Catch mail addressed to a look-alike domain (army.ml for army.mil) before it leaves.

    Exit status 0 when a command ran, 1 when it failed (a store that cannot be
    opened, an address in use, a hold not released), 2 for bad usage or
    configuration; a command's --help says where it differs.
    """


# The module that registers each command on ``app`` when imported. A run imports only the
# module of its own command: ``typogate check`` then loads neither the audit's dask nor the
# gateway's asyncio and web stack, a third of its start-up. Help loads them all.
COMMAND_MODULES = {
    "audit": "audit",
    "check": "check",
    "policy": "gateway",
    "milter": "gateway",
    "proxy": "gateway",
    "serve": "gateway",
    "learn": "learn",
    "holds": "holds",
    "release": "holds",
    "delete": "holds",
    "release-link": "holds",
    "web": "web",
    "users": "web",
    "rules": "rules",
    "monitor": "monitor",
    "sink": "sink",
    "doctor": "doctor",
}


def load_commands(command: str | None = None) -> typer.Typer:
    """``app`` with ``command``'s module imported, or every command's when it is not one."""
    # Every module once, in the table's order: that is the order --help lists commands in.
    modules = dict.fromkeys(COMMAND_MODULES.values())
    for module in [COMMAND_MODULES[command]] if command in COMMAND_MODULES else modules:
        import_module(f"typogate.cli.{module}")
    return app


def main() -> None:
    """Entry point of the ``typogate`` console script."""
    try:
        load_commands(sys.argv[1] if len(sys.argv) > 1 else None)()
    except SystemExit as leaving:
        if leaving.code not in (0, None):
            _refuse_waiting_clients()
        raise
    except BaseException:
        _refuse_waiting_clients()
        raise


def _refuse_waiting_clients() -> None:
    """A service started by a socket unit that fails before it serves: close what waits in
    its sockets (:func:`typogate.gateway.activation.refuse_waiting`)."""
    if "LISTEN_FDS" in os.environ:
        from typogate.gateway.activation import refuse_waiting

        refuse_waiting()
