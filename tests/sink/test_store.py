"""The sink's store: two sink instances in front of one real PostgreSQL count as one, each
daily report is claimed by one instance only, records past the retention limit go on
their own, and a dead database delays records without losing the SMTP answers."""

from __future__ import annotations

import json
import re
import smtplib
import socket
import sqlite3
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from mta import TYPOGATE

from typogate.store import Store
from typogate.store.sink_log import RecordBudget, SinkHistory, SinkLog, SinkOutcome, SinkRecord


def refuse(port: int, sender: str, recipient: str) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mx.sender.example")
        client.mail(sender)
        code, text = client.rcpt(recipient)
    return f"{code} {text.decode()}"


def a_record(when: datetime, local_hash: str = "h") -> SinkRecord:
    return SinkRecord(
        time=when,
        client_address="192.0.2.1",
        client_range="192.0.2.0/24",
        helo="mx.example",
        sender_domain="sender.example",
        local_hash=local_hash,
        recipient=None,
        lookalike="army.ml",
        intended="army.mil",
        outcome=SinkOutcome.HINT,
        reply="550 5.1.2 <*@army.ml>: ...",
    )


@pytest.mark.postgres
def test_two_sinks_share_one_postgresql(sink_in, postgres):
    first = sink_in("first", db=postgres.url)  # migrates the store
    second = sink_in("second", db=postgres.url)
    for sink in (first, second):
        assert refuse(sink.port, "ann@contractor.example", "john@army.ml").startswith("550 5.1.2")
    assert refuse(second.port, "bo@home.example", "jim@army.ml").startswith("550 5.1.2")
    first.stop()
    second.stop()
    today = datetime.now(UTC).date().isoformat()
    done = subprocess.run(
        [TYPOGATE, "sink", "report", "--since", today, "--json", "--db", postgres.url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [army] = json.loads(done.stdout)
    # One key for both instances (kept in the store): john is one recipient, not two.
    assert (army["messages"], army["recipients"]) == (3, 2)

    # Both instances find yesterday's report due; only one may send it.
    engines = [Store(postgres.url, writer=False) for _ in range(2)]
    claims = [
        SinkHistory(s.engine).claim_report("army.mil", today, "r@army.mil", 3) for s in engines
    ]
    assert sorted(claims) == [False, True]
    for store in engines:
        store.close()


def test_records_past_the_retention_limit_go_on_their_own(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'sink.db'}", writer=False)
    now = datetime.now(UTC)
    sink_log = SinkLog(store.engine, retention_days=30).start()
    for days in (45, 31, 29, 0):
        sink_log.record(a_record(now - timedelta(days=days), f"h{days}"))
    assert sink_log.flush()
    sink_log.close()
    history = SinkHistory(store.engine)
    assert len(history.counts((now - timedelta(days=60)).date(), now.date())) == 4
    # A sink that starts deletes what is past the limit (and then checks hourly).
    SinkLog(store.engine, retention_days=30).start().close()
    left = history.counts((now - timedelta(days=60)).date(), now.date())
    assert sorted(c.day for c in left) == sorted(
        (now - timedelta(days=d)).date().isoformat() for d in (29, 0)
    )
    store.close()


@pytest.mark.postgres
def test_a_dead_database_delays_records_and_loses_none(postgres, caplog):
    """And says so once, not at every retry (before: a line every batch_seconds, 15 here;
    a line a second for an hour's outage at the default), and says when it is back."""
    store = Store(postgres.url, writer=False)
    sink_log = SinkLog(store.engine, batch_seconds=0.1).start()
    postgres.stop()
    now = datetime.now(UTC)
    started = datetime.now(UTC)
    for n in range(50):
        sink_log.record(a_record(now, f"h{n}"))  # returns at once: the SMTP answer waits not
    assert datetime.now(UTC) - started < timedelta(seconds=1)
    assert not sink_log.flush(timeout=1.5)  # nothing can be written while it is down
    postgres.start()
    assert sink_log.flush(timeout=30)
    sink_log.close()
    assert sink_log.written == 50 and sink_log.dropped == 0
    said = [r.getMessage() for r in caplog.records if r.name.startswith("typogate")]
    [down] = [line for line in said if "cannot write" in line]
    # However many of the 50 its first try took (the writer wakes every 0.1 s).
    assert re.match(r"sink: cannot write \d+ records \(will retry", down), down
    [back] = [line for line in said if "back" in line]
    assert back.startswith("sink: the database is back after ")
    [count] = SinkHistory(store.engine).counts(now.date(), now.date())
    assert count.messages == 50
    store.close()


@pytest.mark.postgres
def test_a_record_the_database_refuses_costs_only_itself(postgres, caplog):
    """Before: a record PostgreSQL refuses (a NUL, a value too long: what the sink makes of
    a stranger's words is cleaned, but a record that is not would do this) failed its whole
    batch, which was kept for a retry and failed again for ever: no record was written
    again. Now the batch is written record by record, and only the refused one is left
    out, logged and counted as dropped."""
    store = Store(postgres.url, writer=False)
    sink_log = SinkLog(store.engine, batch_seconds=0.1)
    now = datetime.now(UTC)
    for n in range(5):
        record = a_record(now, f"h{n}")
        sink_log.record(replace(record, helo="mx\x00") if n == 2 else record)
    sink_log.start()
    assert sink_log.flush(timeout=30)
    sink_log.record(a_record(now, "later"))
    assert sink_log.flush(timeout=30)
    sink_log.close()
    assert (sink_log.written, sink_log.dropped) == (5, 1)
    [count] = SinkHistory(store.engine).counts(now.date(), now.date())
    assert count.messages == 5
    assert "the database refuses one record, left out" in caplog.text
    store.close()


def test_the_record_budget_is_new_each_hour_and_says_what_the_last_one_left_out(caplog):
    budget = RecordBudget(per_hour=100, per_client=2)
    nine = datetime(2026, 12, 1, 9, 0, 5, tzinfo=UTC)
    assert [budget.allows(a_record(nine)) for _ in range(4)] == [True, True, False, False]
    # The next hour (UTC, in any time zone the record's time is given) starts afresh.
    ten_in_paris = (nine + timedelta(hours=1)).astimezone(timezone(timedelta(hours=1)))
    assert budget.allows(a_record(ten_in_paris))
    said = caplog.text
    assert said.count("192.0.2.0/24 reached its 2 records this hour") == 1
    assert "the hour from 2026-12-01 09:00 UTC left 2 answers unrecorded" in said


def test_a_locked_sqlite_file_delays_records_and_loses_none(tmp_path):
    """Before: while another process held the SQLite file's write lock past the busy
    timeout, the driver's "database is locked" (the driver's own error, not SQLAlchemy's)
    ended the sink's writer thread: the answers went on, and no record was written again
    until a restart. Now the records wait, as for a database that is down."""
    url = f"sqlite:///{tmp_path / 'sink.db'}"
    store = Store(url, writer=False)
    sink_log = SinkLog(store.engine, batch_seconds=0.1).start()
    locker = sqlite3.connect(tmp_path / "sink.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another writer, for longer than busy_timeout
    now = datetime.now(UTC)
    for n in range(20):
        sink_log.record(a_record(now, f"h{n}"))
    assert not sink_log.flush(timeout=7)  # nothing can be written while it is locked
    locker.execute("COMMIT")
    locker.close()
    assert sink_log.flush(timeout=30)
    sink_log.close()
    assert sink_log.written == 20 and sink_log.dropped == 0
    [count] = SinkHistory(store.engine).counts(now.date(), now.date())
    assert count.messages == 20
    store.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_strangers_odd_bytes_are_recorded_as_replacement_characters(sink_in, backend, request):
    """Before: a stranger's EHLO or MAIL FROM with a byte that is not UTF-8 (the sink offers
    SMTPUTF8) reached the record as a lone surrogate, which no database driver writes: the
    writer thread ended on it, and that record, the ones beside it and every one after were
    lost until a restart. One with a NUL, which PostgreSQL refuses in text, failed its batch
    at every retry, for ever: no record was written again. Now each such byte is recorded
    as U+FFFD, and the hint still goes out."""
    db = request.getfixturevalue("postgres").url if backend == "postgres" else None
    sink = sink_in(db=db)
    sessions = [
        [b"EHLO mx.sender.example", b"MAIL FROM:<x@ho\xffme.example> SMTPUTF8"],
        [b"EHLO mx\xfe.sender.example", b"MAIL FROM:<x@home.example>"],
        [b"EHLO mx\x00.sender.example", b"MAIL FROM:<x@home.example>"],
        [b"EHLO mx.sender.example", b"MAIL FROM:<x@ho\x00me.example>"],
        [b"EHLO mx.sender.example", b"MAIL FROM:<x@home.example>"],
    ]
    for lines in sessions:
        with socket.create_connection(("127.0.0.1", sink.port), timeout=10) as client:
            replies = client.makefile("rb")
            replies.readline()
            for line in [*lines, b"RCPT TO:<john@army.ml>"]:
                client.sendall(line + b"\r\n")
                while (reply := replies.readline())[3:4] == b"-":
                    pass
            assert reply.startswith(b"550 5.1.2 <john@army.ml>: army.ml is not army.mil."), reply
    sink.stop()  # written on the way out
    assert "Traceback" not in sink.log and "records not written" not in sink.log, sink.log
    today = datetime.now(UTC).date().isoformat()
    done = subprocess.run(
        [TYPOGATE, "sink", "report", "--since", today, "--json", "--db", sink.db],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout.decode("utf-8"))
    assert report["messages"] == 5
    domains = {d["sender_domain"]: d["messages"] for d in report["by_sender_domain"]}
    assert domains == {"ho\ufffdme.example": 2, "home.example": 3}
