"""The ``typogate`` command. Thin: parse flags, call the parts, print results.

Each part registers its commands from its own module here (check, policy, milter, proxy,
serve, web, learn, audit); exit status 0 when a command ran, 2 for bad usage or config.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="typogate",
    help="Catch mail addressed to a look-alike domain (army.ml for army.mil) before it leaves.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _typogate() -> None:
    """Catch mail addressed to a look-alike domain (army.ml for army.mil) before it leaves."""


# Importing a command module registers its commands on ``app``.
from typogate.cli import audit, check, gateway, holds, web  # noqa: E402,F401


def main() -> None:
    """Entry point of the ``typogate`` console script."""
    app()
