"""`typogate check` output people and machines can use: valid UTF-8 JSON whatever the input
bytes, a table that reads at 80 columns, and the alternatives of an ambiguous typo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typogate import Config, Guard
from typogate.gateway import answers

TYPOGATE = str(Path(sys.executable).with_name("typogate"))


def run(*args: str, stdin: bytes | None = None, columns: int = 80) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TYPOGATE_CONFIG"}
    return subprocess.run(
        [TYPOGATE, *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        env={**env, "COLUMNS": str(columns), "LC_ALL": "C.UTF-8"},
    )


def test_json_is_valid_utf8_for_bytes_that_are_not(tmp_path):
    lines = [b"john@army.ml", b"a\xff@army.ml", b"\xc3(@example.org", "é@army.ml".encode()]
    done = run("check", "--json", stdin=b"\n".join(lines) + b"\n")
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode("utf-8")  # raises on raw bytes that are not UTF-8
    results = [json.loads(line) for line in text.splitlines()]
    assert [r["action"] for r in results] == ["reject", "invalid", "invalid", "reject"]
    assert results[1]["recipient"] == "a\ufffd@army.ml"
    assert results[1]["error"] == "not valid UTF-8 (byte 0xff at character 1)"
    assert results[2]["error"] == "not valid UTF-8 (byte 0xc3 at character 0)"
    # The same from the command line, where the shell hands the bytes over as they are.
    argument = run("check", "--json", os.fsdecode(b"b\xfe@army.ml"))
    assert json.loads(argument.stdout.decode("utf-8"))["action"] == "invalid"
    table = run("check", stdin=b"a\xff@army.ml\n")
    assert table.returncode == 0 and "not valid UTF-8" in table.stdout.decode("utf-8")


def test_the_table_reads_at_80_columns(tmp_path):
    protect = tmp_path / "protected.txt"
    protect.write_text("army.mil\ngmail.com\nexample.de\nexample.fr\n")
    addresses = ["john@army.ml", "jane@gmial.com", "bob@army.mil", "a@example.fe"]
    done = run("check", "--protect", str(protect), *addresses)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert max(len(line) for line in lines) <= 80
    # Nothing is cut: every address, reason code and suggestion is there whole, and the
    # explanations read as sentences, not a word a line.
    text = done.stdout.decode()
    for word in (*addresses, "typo.transposition", "allowed.protected", "typo.ambiguous"):
        assert word in text, word
    assert "reject: did you mean army.mil?" in text
    assert "reject: did you mean example.de or example.fr?" in text
    assert "…" not in text
    assert len(lines) <= 4 * len(addresses) + 2  # at most three lines a recipient


def test_an_ambiguous_typo_names_its_alternatives_everywhere():
    guard = Guard(Config(domains={"protected": ["example.de", "example.fr"]}))
    verdict = guard.evaluate("a@example.fe")
    assert verdict.reason == "typo.ambiguous" and verdict.suggestion is None
    name, value = answers.warning_header(verdict)  # the warn header
    assert value == "a@example.fe: typo.ambiguous; did you mean example.de or example.fr?"
    assert "example.de or example.fr" in answers.hold_reason(verdict)
    assert "example.de or example.fr" in answers.refusal(verdict).text


def _commands(group, path=()):
    """Every command of the ``typogate`` group: (its words, the click command)."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if hasattr(command, "commands"):  # a group (users, sink): its commands too
            yield from _commands(command, (*path, name))


def test_every_commands_help_reads_at_80_columns():
    # typer keeps a docstring's own line breaks after its first paragraph: a line longer
    # than the terminal was broken in two, a word or two left alone on the next line.
    import inspect

    import typer.main
    from typer.testing import CliRunner

    from typogate.cli import load_commands

    # In this process, as the console script renders it: one process per command spent
    # its time importing typogate, not on the help.
    app = load_commands()
    group = typer.main.get_command(app)
    runner = CliRunner()
    broken = []
    for words, command in _commands(group):
        paragraphs = inspect.cleandoc(command.help or "").split("\n\n")[1:]
        lines = [
            line.strip()
            for paragraph in paragraphs
            for line in paragraph.splitlines()
            if line.strip() and line.strip() != "\b"
        ]
        if not lines:
            continue
        shown_help = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "80"})
        assert shown_help.exit_code == 0, shown_help.output
        help_text = shown_help.stdout
        shown = [line.strip() for line in help_text.splitlines()]
        broken += [(" ".join(words), line) for line in lines if line not in shown]
        # Rich cuts a word wider than its column with an ellipsis: in the options table a
        # long type (<us-gov|providers|none>) left the help a narrow column, and paths
        # such as /etc/typogate/typogate.toml were cut off.
        broken += [(" ".join(words), line) for line in help_text.splitlines() if "…" in line]
        # Typer 0.29 wrote "<bool>" beside every flag (--json, --help), as if each took a
        # value: `typogate check --json true` was what a reader would try.
        broken += [(" ".join(words), line) for line in help_text.splitlines() if "<bool>" in line]
    assert not broken, "\n".join(f"{words}: {line}" for words, line in broken)


def test_text_from_mail_cannot_drive_the_terminal():
    """Before: `check` wrote a recipient to the terminal as it came (from a file of
    addresses, say): ESC ]0; set the window's title and ESC [2J cleared the screen, a
    right-to-left override (U+202E) showed the rest of the line backwards, and a no-break
    space looked like a space. Now each is written as its escape."""
    odd = ["bob\x1b]0;owned\x07\x1b[2J@army.ml", "a\u202eb@army.mil", "a\xa0b@army.ml"]
    done = run("check", *odd, columns=200)
    assert done.returncode == 0, done.stderr
    shown = done.stdout.decode()
    for raw in ("\x1b", "\x07", "\u202e", "\xa0"):
        assert raw not in shown, repr(shown)
    for escaped in ('"bob\\x1b]0;owned\\x07\\x1b[2J"@', "a\\u202eb@army.mil", "a\\xa0b@army.ml"):
        assert escaped in shown, shown


def test_text_from_mail_is_shown_as_it_is_never_read_as_styling(tmp_path):
    """Before: `check '"[/]"@army.ml'` ended in a traceback (rich.errors.MarkupError),
    `"[bold]x"@army.ml` was shown as a bold x@army.ml (its quotes lost too), and a file
    name or a configuration path with such brackets broke the error lines of every
    command the same way."""
    odd = ['"[/]"@army.ml', '"[bold]x"@army.ml']
    done = run("check", *odd)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    shown = done.stdout.decode()
    for address in odd:
        assert address in shown, shown
    # An error line names the path as it is.
    done = run("check", "--config", str(tmp_path / "[/x]typogate.toml"), "a@example.org")
    assert done.returncode == 2 and b"Traceback" not in done.stderr, done.stderr
    assert "[/x]typogate.toml" in done.stderr.decode()
    # The audit's summary names a log file with a broken line by its path.
    logs = tmp_path / "x[" / "y]"  # a path that reads "x[/y]/mail.log"
    logs.mkdir(parents=True)
    (logs / "mail.log").write_text(
        "Mar  2 09:01:01 mx1 postfix/smtp[91]: A1: to=<jo@army.ml>, status=sent (250 Ok)\n"
        "Mar  2 09:01:02 mx1 postfix/smtp[91]: A2: to=<jo@army.ml>, relay=mx.army.ml[192.0.2.1]\n"
    )
    done = run("audit", str(logs / "mail.log"), "--out", str(tmp_path / "report"))
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    assert "x[/y]/mail.log" in done.stdout.decode(), done.stdout.decode()


def test_every_value_an_option_takes_is_named_for_what_it_is():
    """Before: sixteen options showed Typer's type label alone (``--db <str>``, ``--out
    <path>``, ``--workers <int range>``), and every argument the parameter's name in the
    code (``release [hold_id]``): a new user learns nothing from ``<str>``. Each now names
    what it takes (``URL``, ``ADDRESS``, ``HOST:PORT``, ``DIR``, ``HOLD_ID``). Flags and
    choices stay as Typer shows them (``<bool>``, ``<held|released|...>``), and so does an
    argument's type column: Typer's own rendering, in every program made with it."""
    import re

    import typer.main
    from typer.testing import CliRunner

    from typogate.cli import load_commands

    app = load_commands()
    runner = CliRunner()
    unnamed = []
    for words, _ in _commands(typer.main.get_command(app)):
        shown = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"}).stdout
        options = [line for line in shown.splitlines() if re.match(r"\W+-", line)]
        unnamed += [
            f"{' '.join(words)}: {' '.join(line.split()[1:3])}"
            for line in options
            if re.search(r"<(str|path|int|float|list)", line)
        ]
        usage = next(line for line in shown.splitlines() if "Usage:" in line)
        unnamed += [
            f"{' '.join(words)}: {word}"
            for word in re.findall(r"(?<![\w-])[a-z_][a-z_-]*", usage)
            if word not in {*words, "typogate"}
        ]
    assert not unnamed, unnamed
