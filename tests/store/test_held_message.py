"""What a hold keeps of its message (subject, date, every recipient): written with the hold
when the adapter has them, filled in later when it has not, through the migration on a
store made before, on a real SQLite file and a real PostgreSQL; and in the file journal."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from revisions import before, take_back

from typogate.store import HeldMessage, Store
from typogate.store.log_file import FileJournal
from typogate.vocabulary import HoldSource

WRITTEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def held(hold_id: str, **facts) -> HeldMessage:
    return HeldMessage(
        hold_id,
        HoldSource.MILTER_QUARANTINE,
        "carol@example.org",
        ("ann@army.ml",),
        ("typo.suffix",),
        ("army.mil",),
        queue_id="4F2A81C0",
        **facts,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_from_before_keeps_its_holds_and_learns_their_messages(backend, tmp_path, request):
    if backend == "postgres":
        url = request.getfixturevalue("postgres").url
    else:
        url = f"sqlite:///{tmp_path / 'typogate.db'}"
    store = Store(url)
    take_back(store, before("auditweb_0001"))  # the store as it was before these fields
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO holds (hold_id, time, source, sender, recipients, reasons, "
            "suggestions, queue_id, state) VALUES ('old', '2026-03-02 09:31:00+00:00', "
            "'postfix-hold', 'carol@example.org', '[\"ann@army.ml\"]', '[\"typo.suffix\"]', "
            "'[\"army.mil\"]', '4F2A81C0', 'held')"
        )
    store.migrate()
    old = store.holds.get("old")
    assert old is not None and not old.described and old.all_recipients == []
    told = store.holds.describe("old", "Quarterly figures", WRITTEN, ["ann@army.ml", "b@x.org"])
    assert told is not None and told.described
    again = store.holds.get("old")
    assert (again.subject, again.written, again.all_recipients) == (
        "Quarterly figures",
        WRITTEN,
        ["ann@army.ml", "b@x.org"],
    )
    store.hold(held("new", subject="", written=WRITTEN, all_recipients=("ann@army.ml",)))
    new = store.holds.get("new")
    assert (new.subject, new.written, new.all_recipients) == ("", WRITTEN, ["ann@army.ml"])
    assert new.described  # "" is a message without a subject, not one not read yet
    store.close()


def test_the_file_journal_writes_a_hold_with_its_message(tmp_path):
    journal = FileJournal(tmp_path / "journal.jsonl")
    journal.hold(held("h1", subject="Leave", written=WRITTEN, all_recipients=("ann@army.ml",)))
    journal.close()
    line = json.loads((tmp_path / "journal.jsonl").read_text().splitlines()[0])
    assert (line["subject"], line["written"], line["all_recipients"]) == (
        "Leave",
        WRITTEN.isoformat(),
        ["ann@army.ml"],
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_from_before_holds_a_long_sender_whole(backend, tmp_path, request):
    """A store made before 0007 kept a hold's sender in 320 characters, which PostgreSQL
    enforced: after the migration a sender as long as Postfix takes is held whole."""
    if backend == "postgres":
        url = request.getfixturevalue("postgres").url
    else:
        url = f"sqlite:///{tmp_path / 'typogate.db'}"
    store = Store(url)
    take_back(store, before("0007"))
    store.hold(held("short"))
    store.migrate()
    sender = "c" * 600 + "@example.org"
    store.hold(dataclasses.replace(held("long"), sender=sender))
    assert store.holds.get("long").sender == sender
    assert store.holds.get("short").sender == "carol@example.org"
    store.close()
