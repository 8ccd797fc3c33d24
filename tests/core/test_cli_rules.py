"""`typogate rules` as a real subprocess on a real SQLite store: what it adds is what the
dashboard shows and the Guard applies; a rule that would not do what it says is refused
in the dashboard's words, with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TYPOGATE = str(Path(sys.executable).with_name("typogate"))


@pytest.fixture
def db(tmp_path) -> str:
    (tmp_path / "empty.log").write_text("")
    url = f"sqlite:///{tmp_path / 'typogate.db'}"
    made = run("learn", str(tmp_path / "empty.log"), "--db", url)  # makes the store
    assert made.returncode == 0, made.stderr
    return url


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TYPOGATE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )


def test_a_rule_added_from_the_shell_is_listed_applied_and_removed(db):
    added = run(
        "rules", "add", "--domain", "cmail.net", "--action", "allow",
        "--sender", "Ann@Example.org", "--db", db,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout == "rule 1 added: domain:cmail.net → allow, for ann@example.org\n"
    listed = json.loads(run("rules", "list", "--json", "--db", db).stdout)
    assert [(r["source"], r["id"], r["domain"], r["senders"]) for r in listed] == [
        ("store", 1, "cmail.net", ["ann@example.org"])
    ]
    table = run("rules", "list", "--db", db).stdout
    assert "domain:cmail.net" in table and "ann@example.org" in table
    assert max(map(len, table.splitlines())) <= 80

    def verdict(sender: str) -> str:
        checked = run("check", "--json", "--db", db, "--sender", sender, "jo@cmail.net")
        return str(json.loads(checked.stdout)["reason"])

    assert verdict("ann@example.org") == "allowed.rule"
    assert verdict("bob@example.org").startswith("typo.")
    removed = run("rules", "remove", "1", "--db", db)
    assert (removed.returncode, removed.stdout) == (0, "rule 1 removed\n")
    assert verdict("ann@example.org").startswith("typo.")
    again = run("rules", "remove", "1", "--db", db)
    assert again.returncode == 1 and "there is no stored rule 1" in again.stderr


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--suffix", "gmial.com", "--action", "reject"], "suffix: 'gmial.com' is not a public"),
        (["--action", "reject"], "a rule names exactly one of 'suffix' or 'domain'"),
        (
            ["--domain", "x.ml", "--action", "reject", "--sender", "ann@example.org"],
            "senders: a rule for some senders only allows",
        ),
    ],
)
def test_a_rule_that_would_not_do_what_it_says_is_refused_with_status_2(db, flags, problem):
    refused = run("rules", "add", *flags, "--db", db)
    assert refused.returncode == 2 and problem in refused.stderr, refused.stderr
    assert json.loads(run("rules", "list", "--json", "--db", db).stdout) == []


def test_the_configuration_files_rules_are_listed_first_as_the_file_spells_them(db, tmp_path):
    config = tmp_path / "typogate.toml"
    config.write_text('[[rules]]\nsuffix = "ml"\naction = "reject"\nexcept = ["partner.ml"]\n')
    added = run("rules", "add", "--domain", "shop.example", "--action", "hold", "--db", db)
    assert added.returncode == 0, added.stderr
    listed = json.loads(run("rules", "list", "--json", "--db", db, "--config", str(config)).stdout)
    assert [(r["source"], r["suffix"] or r["domain"], r["except"]) for r in listed] == [
        ("config", "ml", ["partner.ml"]),
        ("store", "shop.example", []),
    ]
