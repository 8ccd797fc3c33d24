"""A full disk under each store, for real (a small tmpfs filled to the last byte): a hold
that cannot be written is answered with a temporary failure (451), every hold that was
acknowledged is still there afterwards, and a record torn by a short write is skipped and
reported, never glued to the next one."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from disk import fill, small_disk
from mta import Server, policy_answer
from ports import free_port
from postgres import PostgresServer, postgres_binary
from sqlalchemy import create_engine, text

from typogate.store.engine import normal_url
from typogate.store.log_file import TornRecord, read_journal

CONFIG = """
[domains]
protected = ["army.mil", "navy.mil"]
[actions]
typo = "hold"
[gateway]
journal = "{journal}"
"""

PAGE = 4096  # tmpfs hands out space a page at a time


def start_policy(tmp: Path, journal: Path, db: str | None = None) -> Server:
    tmp.mkdir(exist_ok=True)
    config = tmp / "typogate.toml"
    config.write_text(CONFIG.format(journal=journal))
    port = free_port()
    args = ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(config)]
    return Server(args + (["--db", db] if db else []), port, tmp / "policy.log").start()


def hold(policy: Server, n: int) -> tuple[str, str]:
    """Ask for one typo recipient that typogate holds; (recipient, action)."""
    recipient = f"held{n}@army.ml"
    return recipient, policy_answer(policy.port, recipient).removeprefix("action=").strip()


def check(answers: list[tuple[str, str]]) -> set[str]:
    """Every answer is a hold or a temporary failure; the recipients acknowledged held."""
    for recipient, action in answers:
        assert action.startswith("HOLD ") or action.startswith("451 4.3.0 "), (recipient, action)
    return {recipient for recipient, action in answers if action.startswith("HOLD ")}


def test_file_journal_on_a_full_disk_loses_no_acknowledged_hold(tmp_path):
    with small_disk("1m") as disk:
        journal = disk / "journal.jsonl"
        policy = start_policy(tmp_path, journal)
        try:
            answers = [hold(policy, n) for n in range(3)]
            time.sleep(1)  # the verdict events are flushed twice a second
            # Leave the journal's last page 100 bytes short of full, then take the rest of
            # the disk: the next hold (~450 bytes) is written in part, then refused.
            note = json.dumps({"kind": "note", "text": ""}) + "\n"
            padding = (PAGE - 100 - journal.stat().st_size - len(note)) % PAGE
            with journal.open("a") as file:
                file.write(json.dumps({"kind": "note", "text": "x" * padding}) + "\n")
            assert journal.stat().st_size % PAGE == PAGE - 100
            filler = fill(disk)
            during = [hold(policy, n) for n in range(3, 13)]
            assert all(action.startswith("451 4.3.0 ") for _, action in during), during
            filler.unlink()  # space again
            answers += during + [hold(policy, n) for n in range(13, 18)]
        finally:
            policy.stop()
        assert "cannot record hold" in policy.log
        # A crash in the middle of a write leaves half a record at the end: reported when
        # the journal is opened again, and the next hold starts a line of its own.
        with journal.open("a") as file:
            file.write('{"hold_id": "cut short", "source": "postfix-h')
        policy = start_policy(tmp_path / "again", journal)
        try:
            answers.append(hold(policy, 18))
        finally:
            policy.stop()
        assert "ends in a torn record" in policy.log
        acknowledged = check(answers)
        assert len(acknowledged) == 9  # before and after the full disk, and after the crash
        torn: list[TornRecord] = []
        records = list(read_journal(journal, torn))
        held = {r["recipients"][0] for r in records if r["kind"] == "hold"}
        assert acknowledged <= held  # not one acknowledged hold lost
        assert len(torn) == 2  # the hold cut short by the full disk, and the crash's


def test_sqlite_on_a_full_disk_loses_no_acknowledged_hold(tmp_path):
    with small_disk("2m") as disk:
        db = f"sqlite:///{disk / 'typogate.db'}"
        policy = start_policy(tmp_path, tmp_path / "unused.jsonl", db)
        try:
            answers = [hold(policy, n) for n in range(3)]
            filler = fill(disk)
            during = [hold(policy, n) for n in range(3, 203)]
            assert any(action.startswith("451 4.3.0 ") for _, action in during)
            filler.unlink()
            answers += during + [hold(policy, n) for n in range(203, 208)]
            assert policy.process.poll() is None  # still serving (no SIGBUS on its mmap)
        finally:
            policy.stop()
        acknowledged = check(answers)
        assert {f"held{n}@army.ml" for n in (0, 1, 2, 203, 207)} <= acknowledged
        with create_engine(db).connect() as connection:
            rows = connection.execute(text("SELECT recipients FROM holds")).scalars()
            stored = {json.loads(row)[0] for row in rows}
        assert acknowledged <= stored


@pytest.mark.postgres
def test_postgresql_on_a_full_disk_loses_no_acknowledged_hold(tmp_path):
    if postgres_binary("postgres") is None:
        pytest.skip("make test installs postgresql")
    with small_disk("64m") as disk:
        server = PostgresServer(disk / "data", "--wal-segsize=1")
        try:
            server.start()
            policy = start_policy(tmp_path, tmp_path / "unused.jsonl", server.url)
            try:
                answers = [hold(policy, n) for n in range(3)]
                filler = fill(disk)
                during = [hold(policy, n) for n in range(3, 103)]
                assert any(action.startswith("451 4.3.0 ") for _, action in during)
                filler.unlink()
                if server.process is not None and server.process.poll() is not None:
                    server.start()  # it stopped when it could not write: the admin restarts
                after = []
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and len(check(after)) < 3:
                    after.append(hold(policy, 103 + len(after)))
                answers += during + after
                assert len(check(after)) == 3  # holds are recorded again
            finally:
                policy.stop()
            acknowledged = check(answers)
            with create_engine(normal_url(server.url)).connect() as connection:
                rows = connection.execute(text("SELECT recipients FROM holds")).scalars()
                stored = {json.loads(row)[0] for row in rows}
            assert acknowledged <= stored
        finally:
            server.remove()
