"""``typogate check``: judge addresses given as arguments or streamed on stdin."""

from __future__ import annotations

import gc
import io
import json
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import IO, TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from typogate.cli import app
from typogate.cli.options import ConfigFile, KnownFiles, ProfileName, ProtectFiles
from typogate.cli.startup import (
    failing_cleanly,
    load_config,
    open_runtime,
    stdout,
    with_ascii,
)
from typogate.domains import InvalidAddress, display_name, writable_form
from typogate.policy import Guard, Verdict
from typogate.vocabulary import Action

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

_STYLE = {
    Action.ALLOW: "green",
    Action.WARN: "yellow",
    Action.HOLD: "magenta",
    Action.REJECT: "bold red",
    "invalid": "red",
}
_TABLE_ROWS = 500  # rows per printed table: stdin may stream millions of addresses
# Lines of stdin judged as one batch, by this process or a helper: big enough that handing
# a batch over costs little next to judging it, small enough to bound memory.
_BATCH = 1000
_MAX_PROCESSES = 4  # helpers share each batch round; beyond a few, writing out is the limit
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@app.command()
def check(
    addresses: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="ADDRESS",
            help="Addresses (jane@army.ml, or Jane Doe <jane@army.ml> as a mail program "
            "shows them) or bare domains. None: read one a line from stdin.",
            show_default=False,
        ),
    ] = None,
    config: ConfigFile = None,
    protect: ProtectFiles = None,
    known: KnownFiles = None,
    profile: ProfileName = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="A store (sqlite:///PATH, postgresql://...): judge with its learned "
            "correspondents and rules, as the running gateway does. Nothing is recorded.",
            show_default=False,
        ),
    ] = None,
    sender: Annotated[
        str | None,
        typer.Option(
            "--sender", metavar="ADDRESS", help="The sender's address (own domain is allowed)."
        ),
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

    Actions: allow, warn, hold, reject; invalid for an address that is not
    valid syntax (the run goes on). Exit status 0 when it ran, 2 for bad usage
    or configuration.
    """
    runtime = open_runtime(load_config(config, protect, known, profile), db)
    with failing_cleanly():
        guard = runtime.guard
    if runtime.store is not None:
        runtime.store.close()  # read once: the Guard has what it needs
    # Everything made so far (modules, config, index) lives until exit: out of the cycle
    # collector's sight it is not rescanned, nor its pages copied into forked helpers.
    gc.freeze()
    if as_json and not addresses and not sys.stdin.isatty():
        _stream_json(guard, sender)
        return
    inputs = addresses if addresses else _stdin_lines()
    results = (_judge(guard, text, sender) for text in inputs)
    if as_json:
        _write_json(results)
    else:
        _print_tables(results)


def _stdin_lines() -> Iterator[str]:
    # Bytes that are not UTF-8 reach _judge as lone surrogates, which it answers as invalid
    # (rather than a decoding traceback, or raw bytes echoed into the JSON).
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="surrogateescape")
    for line in sys.stdin:
        text = line.strip()
        if text:
            yield text


def _judge(guard: Guard, text: str, sender: str | None) -> dict[str, Any]:
    try:
        _check_utf8(text)
        shown, address = _mailbox(text)
        if "@" in address:
            return guard.evaluate(address, sender, shown_as=shown).to_dict()
        # A bare domain: the same answer, with no address to suggest.
        return Verdict(text, guard.judge_domain(text)).to_dict()
    except InvalidAddress as error:
        return {
            "recipient": writable_form(text),
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


def _mailbox(text: str) -> tuple[str | None, str]:
    """The display name and the address of a recipient as a mail program shows it
    (``Jane Doe <jane@army.ml>``, ``"Doe, Jane" <jane@army.ml>``): the one in angle
    brackets after the display name. Any other line as it is, with no display name
    (``<jane@army.ml>`` too: the Guard reads that form itself).

    Raises :class:`InvalidAddress` for a display name with an @-sign outside quotes
    (``x@army.ml <bob@army.mil>``): which of the two was meant is not clear.
    """
    if not text.endswith(">"):
        return None, text
    quoted = at_sign = False
    for at, ch in enumerate(text):  # up to the first "<" outside a quoted display name
        if ch == '"' and text[at - 1 : at] != "\\":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "<":
            break
        elif ch == "@":
            at_sign = True
    else:
        return None, text
    if not text[:at].strip():
        return None, text
    if at_sign:
        raise InvalidAddress(
            text, "an @-sign in the display name, outside quotes: give the address alone"
        )
    return display_name(text[:at]), text[at + 1 : -1]


def _check_utf8(text: str) -> None:
    """Raise :class:`InvalidAddress` for text that came from bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raw = text.encode("utf-8", "surrogateescape")
        byte = raw[len(text[: error.start].encode("utf-8", "surrogateescape"))]
        raise InvalidAddress(
            writable_form(text), f"not valid UTF-8 (byte 0x{byte:02x} at character {error.start})"
        ) from None


def _write_json(results: Iterable[dict[str, Any]]) -> None:
    write = sys.stdout.write
    for result in results:
        write(_encode(result))
        write("\n")
    sys.stdout.flush()


def _json_lines(guard: Guard, batch: list[str], sender: str | None) -> str:
    return "".join([_encode(_judge(guard, text, sender)) + "\n" for text in batch])


def _stream_json(guard: Guard, sender: str | None) -> None:
    """Judge piped stdin in batches, spread over the free cores, answers in input order.

    Helpers are forked once the index is built (they share it, copy-on-write) and only when
    there is more than one batch of input. Each round hands one batch to every helper and
    judges one here, then writes the answers in order: at most a round of batches is in
    memory, however long the input.
    """
    lines = _stdin_lines()
    batches = iter(lambda: list(islice(lines, _BATCH)), [])
    opening = list(islice(batches, 2))
    helpers = _start_helpers(guard, sender) if len(opening) > 1 else []
    if not helpers:
        _write_json(_judge(guard, text, sender) for text in chain(*opening, lines))
        return
    write = sys.stdout.write
    round_ = opening
    while round_:
        round_ += islice(batches, len(helpers) + 1 - len(round_))
        *theirs, mine = round_
        handed = helpers[: len(theirs)]  # the last round may be short
        for helper, batch in zip(handed, theirs, strict=True):
            helper.send(batch)
        own = _json_lines(guard, mine, sender)
        for helper in handed:
            write(helper.receive())
        write(own)
        round_ = list(islice(batches, len(helpers) + 1))
    for helper in helpers:
        helper.stop()
    sys.stdout.flush()


class _Helper:
    """A forked process that judges the batches it is sent with the parent's Guard."""

    def __init__(self, guard: Guard, sender: str | None) -> None:
        requests, to_helper = os.pipe()  # (read end, write end)
        from_helper, answers = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the helper: never returns into the CLI
            os.close(to_helper)
            os.close(from_helper)
            _serve(guard, sender, os.fdopen(requests, "rb"), os.fdopen(answers, "wb"))
        os.close(requests)
        os.close(answers)
        self._requests = os.fdopen(to_helper, "wb")
        self._answers = os.fdopen(from_helper, "rb")

    def send(self, batch: list[str]) -> None:
        _put(self._requests, "\n".join(batch))

    def receive(self) -> str:
        answers = _get(self._answers)
        if answers is None:
            raise RuntimeError(f"typogate's helper process {self.pid} stopped without answering")
        return answers

    def stop(self) -> None:
        self._requests.close()
        self._answers.close()
        os.waitpid(self.pid, 0)


def _start_helpers(guard: Guard, sender: str | None) -> list[_Helper]:
    if not hasattr(os, "fork"):
        return []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    sys.stdout.flush()  # nothing buffered may be written twice
    return [_Helper(guard, sender) for _ in range(min(cores or 1, _MAX_PROCESSES) - 1)]


def _serve(guard: Guard, sender: str | None, requests: IO[bytes], answers: IO[bytes]) -> NoReturn:
    # Whatever happens, leave without atexit handlers or flushing the parent's buffers; an
    # error is told on stderr, and the parent stops when its answer does not come.
    try:
        while (batch := _get(requests)) is not None:
            _put(answers, _json_lines(guard, batch.split("\n"), sender))
    except BrokenPipeError:
        pass  # the parent is gone (its reader stopped early, as ``| head`` does)
    except Exception:
        traceback.print_exc()
    finally:
        os._exit(0)


def _put(pipe: IO[bytes], text: str) -> None:
    data = text.encode("utf-8", "surrogateescape")
    pipe.write(len(data).to_bytes(8, "little"))
    pipe.write(data)
    pipe.flush()


def _get(pipe: IO[bytes]) -> str | None:
    head = pipe.read(8)
    if len(head) < 8:
        return None
    data = pipe.read(int.from_bytes(head, "little"))
    return data.decode("utf-8", "surrogateescape")


def _print_tables(results: Iterable[dict[str, Any]]) -> None:
    console = stdout()  # only for people: JSON runs never load rich
    table = _new_table()
    for result in results:
        table.add_row(with_ascii(result["recipient"]), _verdict_cell(result))
        if table.row_count >= _TABLE_ROWS:
            console.print(table)
            table = _new_table()
    if table.row_count:
        console.print(table)


def _verdict_cell(result: dict[str, Any]) -> Text:
    """The action and what was probably meant on a line, then why, then the reason code
    and score: one narrow column that reads at 80 columns."""
    from rich.text import Text

    action = result["action"]
    meant = result["suggestion"] or " or ".join(result["alternatives"])
    cell = Text(action, style=_STYLE[action])
    if meant:
        cell.append(": did you mean ")
        cell.append(meant, style="bold cyan")
        cell.append("?")
    # The question is asked on the first line already.
    why = result["explanation"].removesuffix(f" Did you mean {result['suggestion']}?")
    cell.append(f"\n{why}")
    score = "" if result["score"] is None else f", score {result['score']:.3f}"
    risk = f", {result['risk']} risk" if result.get("risk") else ""
    cell.append(f"\n{result['reason']}{score}{risk}", style="dim")
    return cell


def _new_table() -> Table:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False)
    table.add_column("recipient", overflow="fold", max_width=30)
    table.add_column("verdict", overflow="fold", ratio=1)
    return table
