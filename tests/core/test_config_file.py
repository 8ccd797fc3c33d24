"""One configuration file every command reads (--config, $TYPOGATE_CONFIG, the standard
place), the store's URL in it, and commands that never make an empty store: run as real
subprocesses on real SQLite files, from folders that are not the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from typogate.config import SYSTEM_FILE, Config, Rule, config_file
from typogate.errors import ConfigError
from typogate.store import Store
from typogate.vocabulary import Action

TYPOGATE = str(Path(sys.executable).with_name("typogate"))


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "TYPOGATE_CONFIG"}
    environment |= {"COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [TYPOGATE, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=60
    )


def said(done: subprocess.CompletedProcess) -> str:
    return " ".join(done.stderr.split())


def make_store(path: Path) -> str:
    """A real store at ``path``, made the way an admin makes one (typogate learn)."""
    log = path.parent / "empty.log"
    log.write_text("")
    done = run("learn", str(log), "--db", f"sqlite:///{path}", cwd=path.parent)
    assert done.returncode == 0, done.stderr
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    "command",
    [
        ["holds"],
        ["release", "0123"],
        ["delete", "0123", "--yes"],
        ["users", "list"],
    ],
)
def test_commands_that_read_or_administer_never_make_an_empty_store(tmp_path, command):
    """They used to make ./typogate.db and report '0 held' wherever they were run."""
    done = run(*command, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"no store at {tmp_path / 'typogate.db'}" in said(done)
    assert "the default" in said(done) and str(SYSTEM_FILE) in said(done)
    assert list(tmp_path.iterdir()) == []


def test_the_store_url_comes_from_the_file_the_environment_names(tmp_path):
    etc, elsewhere = tmp_path / "etc", tmp_path / "elsewhere"
    etc.mkdir()
    elsewhere.mkdir()
    make_store(etc / "typogate.db")
    # A relative SQLite path is read from the configuration file's folder.
    (etc / "typogate.toml").write_text('[store]\nurl = "sqlite:///typogate.db"\n')
    env = {"TYPOGATE_CONFIG": str(etc / "typogate.toml")}
    listed = run("holds", "--json", cwd=elsewhere, env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    assert list(elsewhere.iterdir()) == []
    # --config beats the environment, --db beats store.url.
    (etc / "other.toml").write_text('[store]\nurl = "sqlite:///other.db"\n')
    other = run("holds", "--config", str(etc / "other.toml"), cwd=elsewhere, env=env)
    assert other.returncode == 1 and f"no store at {etc / 'other.db'}" in said(other)
    assert "named by store.url in" in said(other)
    direct = run("holds", "--db", f"sqlite:///{etc / 'typogate.db'}", cwd=elsewhere, env=env)
    assert direct.returncode == 0, direct.stderr


def test_an_environment_variable_naming_no_file_is_bad_usage(tmp_path):
    done = run("check", "a@army.ml", cwd=tmp_path, env={"TYPOGATE_CONFIG": "nope.toml"})
    assert done.returncode == 2
    assert "nope.toml: no such file (named by $TYPOGATE_CONFIG)" in said(done)


def test_check_judges_with_the_configured_store(tmp_path):
    # The store in the file is used by check (its stored rules apply).
    url = make_store(tmp_path / "typogate.db")
    store = Store(url, writer=False)
    store.rules.save(Rule(domain="x.example", action=Action.REJECT), "test")
    store.close()
    (tmp_path / "typogate.toml").write_text(f'[store]\nurl = "{url}"\n')
    done = run(
        "check", "--json", "a@x.example", cwd=tmp_path, env={"TYPOGATE_CONFIG": "typogate.toml"}
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reason"] == "blocked.domain"


@pytest.mark.parametrize(
    ("url", "status", "makes", "reads"),
    [
        ("sqlite://relative.db", 2, *["a SQLite store is sqlite:///PATH, three slashes"] * 2),
        ("sqlite:///no/such/folder/typogate.db", 1, "folder", "no store at"),
        ("mysql://db.example/typogate", 2, *["the store is sqlite:///PATH or postgresql://"] * 2),
    ],
)
def test_bad_store_urls_are_one_line_not_a_traceback(tmp_path, url, status, makes, reads):
    # serve makes a store that does not exist yet; check and holds only read one.
    for command, message in (
        (["serve", "--no-web", "--no-milter"], makes),
        (["check", "a@army.ml"], reads),
        (["holds"], reads),
    ):
        done = run(*command, "--db", url, cwd=tmp_path)
        assert done.returncode == status, (command, done.stderr)
        assert "Traceback" not in done.stderr
        assert message in said(done), (command, said(done))
    assert list(tmp_path.iterdir()) == []


def test_config_file_lookup_order(tmp_path, monkeypatch):
    monkeypatch.delenv("TYPOGATE_CONFIG", raising=False)
    given = tmp_path / "given.toml"
    assert config_file(given) == given
    named = tmp_path / "named.toml"
    named.write_text("")
    monkeypatch.setenv("TYPOGATE_CONFIG", str(named))
    assert config_file(None) == named
    assert config_file(given) == given
    monkeypatch.setenv("TYPOGATE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"named by \$TYPOGATE_CONFIG"):
        config_file(None)
    monkeypatch.delenv("TYPOGATE_CONFIG")
    assert config_file(None) == (SYSTEM_FILE if SYSTEM_FILE.is_file() else None)


def test_store_url_paths(tmp_path):
    (tmp_path / "t.toml").write_text('[store]\nurl = "sqlite:///data/t.db?timeout=5"\n')
    config = Config.load(tmp_path / "t.toml")
    assert config.store_url == f"sqlite:///{tmp_path}/data/t.db?timeout=5"
    assert config.source == tmp_path / "t.toml"
    absolute = Config.from_mapping({"store": {"url": "sqlite:////var/lib/typogate/typogate.db"}})
    assert absolute.store_url == "sqlite:////var/lib/typogate/typogate.db"
    assert Config().store_url is None and Config().source is None
