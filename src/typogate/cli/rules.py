"""``typogate rules``: the blanket rules from the shell, as the dashboard's rules page has
them (list, add, remove), in the store every running gateway reads within two seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich import box
from rich.table import Table

from typogate.cli import app
from typogate.cli.options import ConfigFile, Db, Json
from typogate.cli.startup import FAILED, USAGE, fail, load_config, open_store, stderr, stdout
from typogate.config import Rule, rule_problem
from typogate.vocabulary import Action

if TYPE_CHECKING:
    from typogate.store.rules import RuleTable

rules = typer.Typer(
    name="rules",
    help="Blanket rules (block a suffix, allow a domain, for everyone or some senders); "
    "the dashboard's rules page, from the shell.",
    no_args_is_help=True,
)
app.add_typer(rules)


def _table(db: str | None, config: Path | None) -> tuple[list[Rule], RuleTable]:
    """The configuration's rules, and the store's rule table."""
    settings = load_config(config)
    return settings.rules, open_store(settings, db).rules


@rules.command("list")
def rules_list(db: Db = None, config: ConfigFile = None, as_json: Json = False) -> None:
    """List the rules in the order they are weighed: the configuration file's, then the
    store's (with the id `rules remove` takes)."""
    configured, table = _table(db, config)
    stored = table.all()
    if as_json:
        # The rule's own keys, as the configuration file spells them (except, not exceptions).
        listed = [
            {"source": "config", **rule.model_dump(mode="json", by_alias=True)}
            for rule in configured
        ] + [
            {
                "source": "store",
                "id": row.id,
                **row.rule.model_dump(mode="json", by_alias=True),
                "author": row.author,
                "updated": row.updated.isoformat(),
                "problem": row.problem,
            }
            for row in stored
        ]
        print(json.dumps(listed, ensure_ascii=False))
        return
    shown = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False)
    shown.add_column("id", no_wrap=True)
    shown.add_column("applies to", overflow="fold", ratio=2)
    shown.add_column("action", no_wrap=True)
    shown.add_column("for", overflow="fold", ratio=2)
    shown.add_column("by", overflow="fold", ratio=1)
    for rule in configured:
        shown.add_row("config", _applies_to(rule), rule.action.value, _for(rule), "")
    for row in stored:
        by = f"{row.author}\n{row.updated:%Y-%m-%d %H:%M}"
        if row.problem:
            by += f"\nnot used: {row.problem}"
        shown.add_row(str(row.id), _applies_to(row.rule), row.rule.action.value, _for(row.rule), by)
    if not configured and not stored:
        stderr().print("no rules")
        return
    stdout().print(shown)


def _applies_to(rule: Rule) -> str:
    text = rule.target
    if rule.exceptions:
        text += " except " + ", ".join(rule.exceptions)
    if rule.message:
        text += f'\n"{rule.message}"'
    return text


def _for(rule: Rule) -> str:
    return ", ".join(rule.senders) or "every sender"


@rules.command("add")
def rules_add(
    action: Annotated[
        Action,
        typer.Option("--action", metavar="ACTION", help="allow, warn, hold or reject."),
    ],
    domain: Annotated[
        str | None,
        typer.Option("--domain", metavar="DOMAIN", help="One domain and its subdomains."),
    ] = None,
    suffix: Annotated[
        str | None,
        typer.Option("--suffix", metavar="SUFFIX", help="Every domain under a public suffix."),
    ] = None,
    exceptions: Annotated[
        list[str] | None,
        typer.Option("--except", metavar="DOMAIN", help="Left to the model. Repeatable."),
    ] = None,
    senders: Annotated[
        list[str] | None,
        typer.Option(
            "--sender",
            metavar="ADDRESS",
            help="An allow rule for this sender only (an address, or a domain for every "
            "address at it). Repeatable.",
        ),
    ] = None,
    message: Annotated[
        str | None,
        typer.Option("--message", metavar="TEXT", help="What the sender reads instead."),
    ] = None,
    actor: Annotated[
        str, typer.Option("--actor", metavar="NAME", help="Who wrote it (shown with it).")
    ] = "admin (cli)",
    db: Db = None,
    config: ConfigFile = None,
) -> None:
    """Add a rule to the store; every running gateway on it applies it within seconds.

    \b
    Examples:
      typogate rules add --domain cmail.net --action allow \\
        --sender ann@example.org
      typogate rules add --suffix ml --action reject --except partner.ml

    Exit status 2 for a rule that would not do what it says (the same checks,
    in the same words, as the configuration file and the dashboard).
    """
    try:
        rule = Rule.model_validate(
            {
                "suffix": suffix,
                "domain": domain,
                "action": action,
                "except": exceptions or [],
                "message": message,
                "senders": senders or [],
            }
        )
    except ValidationError as error:
        fail("rule refused", rule_problem(error), USAGE)
    _, table = _table(db, config)
    stored = table.save(rule, actor)
    print(f"rule {stored.id} added: {rule.target} → {rule.action.value}, for {_for(rule)}")


@rules.command("remove")
def rules_remove(
    rule_id: Annotated[int, typer.Argument(metavar="ID", help="As `rules list` shows it.")],
    db: Db = None,
    config: ConfigFile = None,
) -> None:
    """Remove a rule from the store (the configuration file's rules stay in the file)."""
    _, table = _table(db, config)
    if not table.remove(rule_id):
        fail("not removed", f"there is no stored rule {rule_id} (typogate rules list)", FAILED)
    print(f"rule {rule_id} removed")
