"""``typogate check``: judge addresses given as arguments or streamed on stdin."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from typogate.cli import app
from typogate.cli.configuration import (
    ConfigFile,
    KnownFiles,
    Profile,
    ProtectFiles,
    build_guard,
    load_config,
)
from typogate.domains import InvalidAddress
from typogate.policy import Guard

_STYLE = {
    "allow": "green",
    "warn": "yellow",
    "hold": "magenta",
    "reject": "bold red",
    "invalid": "red",
}
_TABLE_ROWS = 500  # rows per printed table: stdin may stream millions of addresses


@app.command()
def check(
    addresses: Annotated[
        list[str] | None,
        typer.Argument(
            help="Addresses (or bare domains). None: read one a line from stdin.",
            show_default=False,
        ),
    ] = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: Profile = None,
    sender: Annotated[
        str | None, typer.Option("--sender", help="The sender's address (own domain is allowed).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per input line, in input order.")
    ] = False,
) -> None:
    """Judge recipient addresses: is the domain a likely mistake for one you meant?

    \b
    Examples:
      typogate check john@army.ml
      typogate check --json --protect mine.txt < recipients.txt
      typogate check --profile providers jane@gmial.com

    Actions: allow, warn, hold, reject; invalid for an address that is not valid syntax
    (the run goes on). Exit status 0 when it ran, 2 for bad usage or configuration.
    """
    guard = build_guard(load_config(config, protect, known, profile))
    inputs = addresses if addresses else _stdin_lines()
    results = (_judge(guard, text, sender) for text in inputs)
    if as_json:
        _write_json(results)
    else:
        _print_tables(results)


def _stdin_lines() -> Iterator[str]:
    for line in sys.stdin:
        text = line.strip()
        if text:
            yield text


def _judge(guard: Guard, text: str, sender: str | None) -> dict[str, Any]:
    try:
        if "@" in text:
            return guard.evaluate(text, sender).to_dict()
        judgement = guard.judge_domain(text)
        return {
            "recipient": text,
            "domain": judgement.domain,
            "action": judgement.action.value,
            "reason": judgement.reason,
            "explanation": judgement.explanation,
            "suggestion": judgement.suggestion,
            "suggested_recipient": None,
            "alternatives": list(judgement.alternatives),
            "score": round(judgement.score, 4),
            "rule": judgement.rule,
            "edits": list(judgement.edits),
        }
    except InvalidAddress as error:
        return {
            "recipient": text,
            "domain": None,
            "action": "invalid",
            "reason": "invalid.syntax",
            "explanation": error.reason,
            "suggestion": None,
            "suggested_recipient": None,
            "alternatives": [],
            "score": None,
            "rule": "syntax",
            "edits": [],
            "error": error.reason,
        }


def _write_json(results: Iterable[dict[str, Any]]) -> None:
    write = sys.stdout.write
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for result in results:
        write(dumps(result))
        write("\n")
    sys.stdout.flush()


def _print_tables(results: Iterable[dict[str, Any]]) -> None:
    console = Console()
    table = _new_table()
    for result in results:
        action = result["action"]
        table.add_row(
            result["recipient"],
            f"[{_STYLE[action]}]{action}[/]",
            result["suggestion"] or ", ".join(result["alternatives"]) or "",
            result["reason"],
            "" if result["score"] is None else f"{result['score']:.3f}",
            result["explanation"],
        )
        if table.row_count >= _TABLE_ROWS:
            console.print(table)
            table = _new_table()
    if table.row_count:
        console.print(table)


def _new_table() -> Table:
    table = Table(show_lines=False, header_style="bold")
    table.add_column("recipient", overflow="fold")
    table.add_column("action")
    table.add_column("did you mean", style="cyan")
    table.add_column("reason")
    table.add_column("score", justify="right")
    table.add_column("why", overflow="fold", ratio=1)
    return table
