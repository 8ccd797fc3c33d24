"""The `typogate check` contract, run as a real subprocess: JSON fields, order, exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

TYPOGATE = [str(Path(sys.executable).with_name("typogate"))]


def run(*args, stdin=None):
    return subprocess.run(
        [*TYPOGATE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


FIELDS = {"recipient", "domain", "action", "reason", "explanation", "suggestion", "score", "rule"}


def test_default_profile_rejects_army_ml_with_suggestion():
    result = run("check", "--json", "john@army.ml")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    verdict = json.loads(line)
    assert verdict.keys() >= FIELDS
    assert verdict["action"] == "reject"
    assert verdict["suggestion"] == "army.mil"
    assert verdict["domain"] == "army.ml"


def test_stdin_one_object_per_input_in_order_with_invalid_in_between(tmp_path):
    protect = tmp_path / "protected.txt"
    protect.write_text("army.mil\ngmail.com\n")
    inputs = ["a@army.ml", "not an address", "b@gmail.com", "", "c@gmial.com", "d@@x", "e@аrmy.mil"]
    result = run("check", "--json", "--protect", str(protect), stdin="\n".join(inputs) + "\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [text for text in inputs if text]
    assert [line["recipient"] for line in lines] == expected
    assert [line["action"] for line in lines] == [
        "reject",
        "invalid",
        "allow",
        "reject",
        "invalid",
        "reject",
    ]
    invalid = lines[1]
    assert invalid["error"] and invalid["suggestion"] is None
    assert lines[5]["reason"] == "typo.confusable"


def test_json_recipient_is_an_address_that_reads_back_as_the_same_mailbox():
    """Before: a quoted local part lost its quotes in ``recipient`` (``john doe@army.ml``,
    Postfix's internal form, which no mail program takes), while ``suggested_recipient``
    beside it was quoted. Now both are written as a sender writes them."""
    inputs = ['"john doe"@army.ml', 'Jane <"jo\\"e"@army.ml>', "john doe@army.ml", "a.b@army.ml"]
    result = run("check", "--json", *inputs)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["recipient"] for line in lines] == [
        '"john doe"@army.ml',
        '"jo\\"e"@army.ml',
        '"john doe"@army.ml',  # Postfix's unquoted form, as a sender writes it
        "a.b@army.ml",
    ]
    assert [line["suggested_recipient"] for line in lines] == [
        '"john doe"@army.mil',
        '"jo\\"e"@army.mil',
        '"john doe"@army.mil',
        "a.b@army.mil",
    ]
    table = run("check", '"john doe"@army.ml').stdout
    assert '\n "john doe"@army.ml ' in table, table  # quoted once, in the table too


def test_long_stdin_keeps_input_order_across_batches(tmp_path):
    # Several thousand lines: judged in batches, by helper processes where there are cores.
    from typogate import Config, Guard

    protect = tmp_path / "protected.txt"
    protect.write_text("army.mil\ngmail.com\n")
    cycle = ["a@army.ml", "not an address", "b@gmail.com", "c@gmial.com", "e@аrmy.mil"]
    inputs = [f"{i}.{text}" for i in range(1_000) for text in cycle]
    result = run("check", "--json", "--protect", str(protect), stdin="\n".join(inputs) + "\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    guard = Guard(Config(domains={"protected": ["army.mil", "gmail.com"]}))
    expected = [
        "invalid" if "@" not in text else guard.evaluate(text).action.value for text in inputs
    ]
    assert [line["recipient"] for line in lines] == inputs
    assert [line["action"] for line in lines] == expected


def test_explicit_lists_do_not_consult_built_in_lists(tmp_path):
    protect = tmp_path / "p.txt"
    protect.write_text("example.org\n")
    result = run("check", "--json", "--protect", str(protect), "john@army.ml")
    verdict = json.loads(result.stdout)
    assert verdict["action"] == "allow"  # army.mil is not in the list given


def test_known_and_sender_flags(tmp_path):
    protect = tmp_path / "p.txt"
    protect.write_text("acme.com\n")
    known = tmp_path / "k.txt"
    known.write_text("acne.com\n")
    verdict = json.loads(run("check", "--json", "--protect", str(protect), "a@acne.com").stdout)
    assert verdict["action"] == "reject"
    verdict = json.loads(
        run(
            "check", "--json", "--protect", str(protect), "--known", str(known), "a@acne.com"
        ).stdout
    )
    assert verdict["action"] == "allow" and verdict["reason"] == "allowed.known"
    verdict = json.loads(
        run(
            "check", "--json", "--protect", str(protect), "--sender", "me@acne.com", "a@acne.com"
        ).stdout
    )
    assert verdict["reason"] == "allowed.own_domain"


def test_config_file_and_profile_flag(tmp_path):
    config = tmp_path / "typogate.toml"
    config.write_text("[actions]\ntypo = 'hold'\n")
    verdict = json.loads(run("check", "--json", "--config", str(config), "a@army.ml").stdout)
    assert verdict["action"] == "hold"
    verdict = json.loads(run("check", "--json", "--profile", "providers", "a@army.ml").stdout)
    assert verdict["action"] == "allow"


def test_human_output_is_a_table():
    result = run("check", "john@army.ml", "jane@army.mil")
    assert result.returncode == 0
    assert "army.mil" in result.stdout and "reject" in result.stdout and "allow" in result.stdout


def test_bad_usage_exits_2(tmp_path):
    assert run("check", "--no-such-flag").returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nreject_at = 7\n")
    result = run("check", "--config", str(bad), "a@army.ml")
    assert result.returncode == 2
    assert "model.reject_at" in result.stderr
    assert run("check", "--protect", str(tmp_path / "missing.txt"), "a@x.com").returncode == 2
    assert run("check", "--profile", "nato", "a@x.com").returncode == 2


def test_library_call():
    code = (
        "import typogate; v = typogate.check('john@army.ml'); print(v.action.value, v.suggestion)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["reject", "army.mil"]


def test_streaming_many_addresses_runs_in_bounded_memory(tmp_path):
    # 300k distinct domains: far more than the verdict caches hold, so memory must plateau.
    protect = tmp_path / "p.txt"
    protect.write_text("army.mil\n")
    lines = "".join(f"u{i}@host{i}.example{i % 97}.com\n" for i in range(300_000))
    code = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], stdin=sys.stdin, stdout=subprocess.PIPE)\n"
        "count = done.stdout.count(b'\\n')\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024\n"
        "print(count, peak)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *TYPOGATE, "check", "--json", "--protect", str(protect)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=300,
    )
    count, peak_mb = map(int, result.stdout.split())
    assert count == 300_000
    assert peak_mb < 250, f"peak RSS {peak_mb} MB"


def test_every_command_is_filed_under_the_module_that_registers_it():
    import typer.main

    from typogate.cli import COMMAND_MODULES, load_commands

    group = typer.main.get_command(load_commands())
    assert set(group.commands) == set(COMMAND_MODULES)  # a new command must be filed
    for name, command in group.commands.items():
        # A sub-group (users) has no callback of its own; its commands' callbacks tell.
        callbacks = (
            [command.callback]
            if command.callback
            else [sub.callback for sub in command.commands.values()]
        )
        for callback in callbacks:
            assert callback.__module__ == f"typogate.cli.{COMMAND_MODULES[name]}", name
    help_text = run("--help").stdout
    assert all(name in help_text for name in COMMAND_MODULES)


def test_check_loads_only_its_own_command_module():
    # Start-up is most of a short check: the audit's and the gateway's imports stay out.
    code = (
        "import sys\n"
        "sys.argv = ['typogate', 'check', '--json', 'john@army.ml']\n"
        "from typogate.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    loaded = sorted(m for m in sys.modules if m.startswith('typogate.cli.'))\n"
        "    print(' '.join(loaded), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert json.loads(result.stdout)["suggestion"] == "army.mil"
    loaded = result.stderr.split()
    assert "typogate.cli.check" in loaded
    assert not {"typogate.cli.audit", "typogate.cli.gateway", "typogate.cli.web"} & set(loaded)


def test_help_lists_every_command_without_loading_the_store_or_its_database_library():
    # Help imports every command module; the store's SQLAlchemy was a third of its 2 s.
    code = (
        "import sys\n"
        "sys.argv = ['typogate', '--help']\n"
        "from typogate.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'\n"
        "               or m.startswith('typogate.store.')), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "release-link" in result.stdout and "monitor" in result.stdout
    assert set(result.stderr.split()) <= {"typogate.store.journal", "typogate.store.records"}


def test_bare_domain_gets_the_same_answer_without_a_suggested_address():
    result = run("check", "--json", "army.ml", "john@army.ml")
    bare, address = (json.loads(line) for line in result.stdout.splitlines())
    assert bare.keys() == address.keys()
    assert bare["suggestion"] == address["suggestion"] == "army.mil"
    assert bare["suggested_recipient"] is None
    assert address["suggested_recipient"] == "john@army.mil"


def test_a_bare_host_alone_gets_the_answer_it_gets_in_an_address():
    # gmailcom alone was "invalid: it should have a period", with nothing offered.
    result = run("check", "--json", "gmailcom", "jane@gmailcom", "localhost")
    bare, address, host = (json.loads(line) for line in result.stdout.splitlines())
    assert bare["suggestion"] == address["suggestion"] == "gmail.com"
    assert bare["reason"] == address["reason"] == "typo.dot"
    assert bare["action"] == address["action"] == "reject"
    assert host["action"] == "invalid"  # no domain, and no slip of one


def test_a_recipient_as_a_mail_program_shows_it_is_judged_by_its_address():
    # A To: line copied from a mail program was "invalid: the domain contains '>'".
    lines = ["Jane Doe <jane@gmial.com>", '"Doe, Jane" <jane@army.ml>', "x@army.ml <bob@army.mil>"]
    result = run("check", "--json", *lines)
    named, quoted, unclear = (json.loads(line) for line in result.stdout.splitlines())
    assert (named["recipient"], named["suggestion"]) == ("jane@gmial.com", "gmail.com")
    assert (quoted["recipient"], quoted["suggestion"]) == ("jane@army.ml", "army.mil")
    # An @-sign in the name outside quotes: which address was meant is not clear.
    assert unclear["action"] == "invalid" and "display name" in unclear["explanation"]


def test_a_display_name_that_is_an_address_we_protect_elsewhere_is_a_look_alike():
    # "john@army.mil" <john@evil.com>: its reader sees john@army.mil. It was allowed.
    result = run("check", "--json", '"john@army.mil" <john@evil.com>', "John <john@evil.com>")
    shown, named = (json.loads(line) for line in result.stdout.splitlines())
    assert (shown["recipient"], shown["action"]) == ("john@evil.com", "reject")
    assert "is shown as john@army.mil" in shown["explanation"]
    assert named["action"] == "allow"
