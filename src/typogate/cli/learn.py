"""``typogate learn``: seed the learned relationships from existing Postfix logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from typogate.cli import app
from typogate.cli.options import ConfigFile, Db, Json
from typogate.cli.startup import (
    USAGE,
    fail,
    failing_cleanly,
    load_config,
    open_runtime,
    stderr,
    stdout,
    with_ascii,
)
from typogate.domains import InvalidAddress
from typogate.vocabulary import Action, AuditFormat

if TYPE_CHECKING:
    from typogate.audit.learned_logs import ReadBefore

# Said of a domain that one sender writes to beside a near-twin of it.
_TWINS = (
    "Only {0} writes to it here, and to its near-twin {1} too, without an answer from"
    " either: one of the two is a saved slip, and deliveries cannot tell which. Mail from"
    " it, a release or an admin's rule teaches it."
)
# Said of a likely slip that answered some of ours and is still refused.
_ANSWERED = (
    " It answered some of ours: their correspondent, not everyone's, until an admin allows it"
    " (or, beside a correspondent, it answers learning.proven_senders of ours)."
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A domain learn did not make a correspondent, why, and our senders who wrote there
    (address, deliveries; most first): whom an admin asks whether it is meant."""

    domain: str
    deliveries: int
    received: int
    suggestion: str | None
    why: str
    senders: list[tuple[str, int]]


def _written_by(senders: list[tuple[str, int]], shown: int = 3) -> str:
    """``ops@example.org 40, sue@example.org 1 and 2 more``."""
    if not senders:
        return "no sender of ours named in the log"
    named = ", ".join(f"{sender} {count:,}" for sender, count in senders[:shown])
    more = len(senders) - shown
    return f"Written to by {named}" + (f" and {more:,} more" if more > 0 else "")


def _first_line(error: Exception) -> str:
    """What the database said, without SQLAlchemy's statement and parameters."""
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]


@contextmanager
def _ends_on(errors: tuple[type[Exception], ...], what: str, then: str) -> Iterator[None]:
    """End the command in a line when the store raises one of ``errors``: ``what``, what
    the database said, and ``then``."""
    try:
        yield
    except errors as error:
        fail(what, f"{_first_line(error)}; {then}")


def _read_before(before: ReadBefore) -> str:
    """``mail.log.1: its first 5,242,880 bytes were learned before; read on from there``."""
    from typogate.audit.learned_logs import TO_ITS_END

    if before.same_as is not None:
        return f"{before.path}: the same log as {before.same_as}; read once"
    if before.passed == TO_ITS_END:
        return f"{before.path}: learned before, to its end; not read again (--again reads it)"
    return (
        f"{before.path}: its first {before.passed:,} bytes were learned before;"
        " read on from there (--again reads it whole)"
    )


@app.command()
def learn(
    paths: Annotated[
        list[Path], typer.Argument(metavar="LOG", help="Postfix mail logs (plain or .gz).")
    ],
    db: Db = None,
    config: ConfigFile = None,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Read the logs whole, even what an earlier run learned (it counts twice).",
        ),
    ] = False,
    all_dates: Annotated[
        bool,
        typer.Option(
            "--all-dates",
            help="Count the lines dated from the first day typogate judged mail into this"
            " store too (it learned from that mail as it passed; they count twice).",
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Seed the learned relationships from existing Postfix logs, both directions.

    \b
    Deliveries to an outside domain (by Postfix's smtp client) and mail received
    from one (delivered here by local, virtual, lmtp or pipe) count for the
    organisation, the sender's domain and the sender's address. A domain the
    organisation really writes to stops being flagged, and its near-twins become
    suspicious.

    \b
    Never learned from deliveries alone, however many:
      - a slip typogate flags (likely, or possible: a warning) of a correspondent;
        it needs answers to several of ours, or their releases;
      - a look-alike of a protected domain; it needs an admin's rule;
      - a domain only one sender writes to, who writes to a near-twin of it too
        (one of the two is a saved slip).
    Mail from a slip counts only as a reply to one of ours who wrote to it: its
    owner writing to us unasked proves nothing.

    \b
    Learning the same logs again counts only what is new in them: the store keeps
    how far each log was read, by its first line, which rotation (renaming,
    compressing) keeps. Once typogate is in the mail flow it learns from the mail
    it passes: lines dated from the first day it judged mail into the store are
    left out, and counted in the output (--all-dates learns them too).

    \b
    What was not learned, why, and which senders wrote there is printed: a
    table, or --json. Exit status 0 when the run was learned, 1 when the store
    could not answer or write, or another run stored these logs meanwhile (the
    line says whether anything was learned; run it again), 2 for bad usage or a
    log that cannot be opened (a damaged archive is said, and the rest learned).
    Examples:
      typogate learn /var/log/mail.log*
      typogate learn --db postgresql://typogate@db/typogate --json mail.log.1.gz
    """
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn
    from rich.table import Table
    from rich.text import Text

    from typogate.audit import lessons
    from typogate.audit.learned_logs import TO_ITS_END, resume
    from typogate.audit.sources import AuditInputError, plan
    from typogate.store.engine import shown_url, write_errors
    from typogate.store.records import LearnRefusal

    try:
        parts = plan(paths, AuditFormat.POSTFIX, whole_lines=True)
    except AuditInputError as error:
        fail("cannot read", str(error), USAGE)
    runtime = open_runtime(load_config(config), db, required=True, create=True)
    assert runtime.store is not None
    store_url = runtime.store.url
    history = runtime.store.history
    store_down = write_errors(runtime.store.engine)
    nothing = "nothing from this run was learned (run it again once it can)"
    try:
        with _ends_on(store_down, "the store cannot answer", nothing):
            read_from = history.learned_logs()
            resumed = resume(parts, {} if again else read_from)
            # A gateway learned from the mail it judged as it passed: not from its log again.
            judged = None if all_dates else history.judged_since()
            since = None if judged is None else lessons.local_day_of(judged)
    except AuditInputError as error:  # gone or unreadable since it was planned
        fail("cannot read", str(error), USAGE)
    learned = lessons.Lessons()  # what is new in the logs: learned
    shown = lessons.Lessons()  # all they show, learned before or now: the report's
    with Progress(
        TextColumn("[bold]learning[/]"),
        BarColumn(),
        TransferSpeedColumn(),
        console=stderr(),
        disable=as_json,
    ) as progress:
        read = [(part, True) for part in resumed.parts] + [(p, False) for p in resumed.known]
        task = progress.add_task("learn", total=sum(part.size for part, _ in read))
        for part, new in read:
            try:
                taught = lessons.read_part(part, since)
            except AuditInputError as error:  # a damaged archive: say which, learn the rest
                stderr().print(Text.assemble(("not read", "yellow"), f": {error}"), soft_wrap=True)
            else:
                shown.merge(taught)
                if new:
                    learned.merge(taught)
            progress.advance(task, part.size)
    delivered = learned.delivered()  # each domain checked once, for both directions
    # After a long read: the store may have gone meanwhile.
    with _ends_on(store_down, "the store cannot answer", nothing), failing_cleanly():
        # Knows this run's deliveries, and what it refuses to trust, before any is written.
        guard = runtime.foresee(history.relationships_adding(delivered))

    def slip_like(domain: str) -> bool:
        try:
            return guard.slip_like(domain)
        except InvalidAddress:
            return True  # not a domain name: mail "from" it proves nothing

    # A reply counts for one of ours who wrote to its domain, in this run or before. The
    # report is of all the logs show, whichever run learned it, weighed as the learning is.
    all_delivered = shown.delivered()
    received, _ = learned.received(slip_like, all_delivered)
    received_shown, unasked = shown.received(slip_like, all_delivered)
    # With how far each log was read, at once: learned again, it goes on from there.
    reads = [(read.log, read.learned, read.path) for read in resumed.reads]
    # failing_cleanly: another run stored the same logs meanwhile, and it says so.
    with _ends_on(store_down, "the store cannot write", nothing), failing_cleanly():
        history.learn_logs(delivered, received, reads, read_from)
    # The replies too, learned at once with the deliveries and kept: what the gateways'
    # next start takes (and learns all the same if the store cannot answer now).
    stored = (
        "this run was learned, its table not made (run it again for the table: it counts"
        " nothing twice)"
    )
    with _ends_on(store_down, "the store cannot answer", stored), failing_cleanly():
        guard = runtime.relearn()
    domains = shown.domains(received_shown)
    writers = shown.writers()
    refused: list[Refusal] = []
    for domain, (sent, received_from) in sorted(domains.items()):
        try:
            verdict = guard.judge_domain(domain)
        except InvalidAddress:
            continue  # not a domain name: nothing to learn
        if verdict.action is not Action.ALLOW:
            why = verdict.explanation
            if received_from:
                why += _ANSWERED
            suggestion = verdict.suggestion
        elif (twin := guard.held_back_by_twin(domain)) is not None:
            why, suggestion = _TWINS.format(*twin), None
        else:
            continue
        senders = sorted(writers.get(domain, {}).items(), key=lambda s: (-s[1], s[0]))
        refused.append(Refusal(domain, sent, received_from, suggestion, why, senders))
    # For the admin's first review on the dashboard (/pairs), in place of what earlier
    # runs said of the same domains.
    now = datetime.now(UTC)
    try:
        history.keep_refusals(
            [
                LearnRefusal(r.domain, sender, count, r.suggestion, r.why, now)
                for r in refused
                for sender, count in r.senders
            ],
            judged=list(domains),
        )
    except store_down as error:  # the learning itself is stored
        stderr().print(
            Text.assemble(
                ("not kept for /pairs", "yellow"),
                f": {_first_line(error)}; the learning is stored, and learn run again"
                " keeps the list",
            ),
            soft_wrap=True,
        )
    runtime.close()
    summary = {
        "deliveries": learned.deliveries,
        "received": learned.messages_in,
        "domains": len(learned.domains(received)),
        "store": shown_url(store_url),
        "refused": [
            {
                "domain": r.domain,
                "deliveries": r.deliveries,
                "received": r.received,
                "suggestion": r.suggestion,
                "why": r.why,
                "senders": [{"sender": s, "deliveries": n} for s, n in r.senders],
            }
            for r in refused
        ],
        "unasked": [{"domain": d, "received": n} for d, n in sorted(unasked.items())],
        "judged": None
        if since is None
        else {
            "since": since.isoformat(),
            "deliveries": learned.judged_out,
            "received": learned.judged_in,
        },
        "read_before": [
            {
                "path": b.path,
                "bytes": None if b.passed == TO_ITS_END else b.passed,
                "same_as": b.same_as,
            }
            for b in resumed.before
        ],
    }
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
        return
    for b in resumed.before:
        stderr().print(_read_before(b), soft_wrap=True)
    stderr().print(
        f"learned {learned.deliveries:,} deliveries to {summary['domains']:,} domains and "
        f"{learned.messages_in:,} messages received into {shown_url(store_url)}"
    )
    if since is not None and learned.judged_out + learned.judged_in:
        stderr().print(
            f"left out {learned.judged_out:,} deliveries and {learned.judged_in:,} messages"
            f" received dated {since} or later: typogate has judged the mail into this"
            " store since then, and learned from it as it passed (--all-dates counts"
            " them too)",
            soft_wrap=True,
        )
    if refused:
        table = Table(title="Not learned from deliveries: slips, and one sender's near-twins")
        table.add_column("domain", overflow="fold")
        table.add_column("deliveries", justify="right")
        table.add_column("received", justify="right")
        table.add_column("did you mean", overflow="fold")
        table.add_column("why, and who wrote there", overflow="fold", ratio=1)
        for r in refused:
            table.add_row(
                with_ascii(r.domain),
                f"{r.deliveries:,}",
                f"{r.received:,}",
                r.suggestion or "",
                Text.assemble(r.why, "\n", (_written_by(r.senders), "dim")),
            )
        # The admin's first review: ask the senders, allow what each meant, for them alone.
        table.caption = (
            "A sender who meant one of these is stopped there until an admin allows it for"
            " that sender: typogate rules add --domain DOMAIN --action allow --sender SENDER"
        )
        stdout().print(table)
    if unasked:
        table = Table(title="Not learned: mail from slips that nobody here wrote to")
        table.add_column("domain", overflow="fold")
        table.add_column("messages received", justify="right")
        for domain, count in sorted(unasked.items()):
            table.add_row(with_ascii(domain), f"{count:,}")
        stdout().print(table)
