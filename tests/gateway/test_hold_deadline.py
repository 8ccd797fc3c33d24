"""A hold is answered within ``limits.hold_record_seconds``, whatever the store does: a
PostgreSQL that stops answering (frozen here with SIGSTOP, as a server stuck on its disk
is) costs the client a ``451`` (it retries), never a policy answer that never comes; and a
record the store takes only later is voided, and nobody is told of a hold that is not."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from mta import Server, Sink, policy_answer
from ports import free_port

from typogate import Config
from typogate.gateway.envelope import Envelope
from typogate.runtime import Runtime
from typogate.store import HeldMessage, Store
from typogate.store.log_file import FileJournal, read_journal
from typogate.vocabulary import Adapter, HoldSource

pytestmark = pytest.mark.postgres

_CANNOT_HOLD = "451 4.3.0 typogate cannot record the hold now; please try again later"


def _ask(port: int, recipient: str, queue_id: str) -> tuple[float, str]:
    """A hold request from alice: seconds to the answer, and the answer."""
    started = time.monotonic()
    answer = policy_answer(port, recipient, "alice@example.org", timeout=60, queue_id=queue_id)
    return time.monotonic() - started, answer.strip()


def _holding_policy(tmp_path, postgres, gateway: str = "") -> Server:
    """A policy service on ``postgres`` that holds mail to navy.ml, its holds recorded
    within a second; one hold made while the store answers (sam@navy.ml)."""
    port = free_port()
    config = tmp_path / "typogate.toml"
    config.write_text(
        '[[rules]]\ndomain = "navy.ml"\naction = "hold"\n'
        f"[gateway]\n{gateway}\n[limits]\nhold_record_seconds = 1.0\n"
    )
    policy = Server(
        ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(config), "--db", postgres.url],
        port,
        tmp_path / "policy.log",
    ).start()
    answer = _ask(port, "sam@navy.ml", "9A8B7C6D5E")[1]
    assert answer.startswith("action=HOLD "), answer  # the store answers: held
    return policy


def test_a_store_that_stops_answering_costs_a_451_and_leaves_no_hold(tmp_path, postgres):
    """Before: the policy service waited for the store as long as it took. With the server
    frozen, no answer came in 120 s: Postfix gives up after its timeout and applies its
    default_action (with fail-open the message typogate meant to hold goes through), and
    when the server came back the hold was recorded and the sender told of it anyway."""
    notices = Sink(free_port()).start()
    policy = _holding_policy(tmp_path, postgres, f'notice_relay = "127.0.0.1:{notices.port}"')
    port = policy.port
    try:
        postgres.freeze()
        try:
            waited, answer = _ask(port, "kim@navy.ml", "9A8B7C6D5F")
        finally:
            postgres.thaw()
        assert answer == f"action={_CANNOT_HOLD}"
        assert 0.9 < waited < 5, waited
        deadline = time.monotonic() + 30
        while "voided" not in policy.log and time.monotonic() < deadline:
            time.sleep(0.2)  # the record the server takes once it runs again
    finally:
        policy.stop()
    assert "hold of kim@navy.ml was recorded" in policy.log and "voided" in policy.log
    store = Store(postgres.url, writer=False, create=False)
    try:
        held = [hold.recipients for hold in store.holds.in_state()]
    finally:
        store.close()
    assert held == [["sam@navy.ml"]], held
    time.sleep(1)
    told = [m.recipients for m in notices.messages]
    notices.stop()
    assert told == [["alice@example.org"]], told  # of sam's hold only
    assert "Traceback" not in policy.log, json.dumps(policy.log[-2000:])


def test_a_flood_of_holds_on_a_stopped_store_is_answered_at_once(tmp_path, postgres):
    """Before: each hold waiting for a frozen store took one of the policy service's six
    executor threads for hold_record_seconds, and the rest queued behind them: 30 at once
    were answered over five rounds, and a sender who asks for holds at will could push
    everyone's past Postfix's timeout. Now four wait for the store and the rest are
    answered 451 at once."""
    policy = _holding_policy(tmp_path, postgres)
    port = policy.port
    try:
        postgres.freeze()
        try:
            with ThreadPoolExecutor(30) as pool:
                asked = [
                    pool.submit(_ask, port, f"u{n}@navy.ml", f"9A8B7C6D{n:02X}") for n in range(30)
                ]
                answers = [future.result() for future in asked]
        finally:
            postgres.thaw()
        assert {answer for _, answer in answers} == {f"action={_CANNOT_HOLD}"}
        assert max(waited for waited, _ in answers) < 2.5, sorted(w for w, _ in answers)
    finally:
        policy.stop()
    assert "4 holds already wait for the store" in policy.log


def test_a_hold_the_store_records_late_is_voided_and_nobody_told(tmp_path, caplog):
    """The gatekeeper's side, on SQLite: another process holds the database's write lock
    for two seconds (a backup, a long migration), longer than hold_record_seconds. The
    adapter has its answer (None: a temporary failure) at the deadline; the record made
    once the lock is let go is voided, and the sender is told of no hold."""
    notices = Sink(free_port()).start()
    db = tmp_path / "t.db"
    config = Config.model_validate(
        {
            "rules": [{"domain": "navy.ml", "action": "hold"}],
            "gateway": {"notice_relay": f"127.0.0.1:{notices.port}"},
            "limits": {"hold_record_seconds": 0.5},
        }
    )
    runtime = Runtime.open(config, f"sqlite:///{db}", recording=True, create=True)
    gatekeeper = runtime.gatekeeper(Adapter.POLICY)
    envelope = Envelope(sender="alice@example.org")
    caplog.set_level(logging.ERROR, "typogate.gateway.gatekeeper")
    try:
        held = gatekeeper.hold(
            [gatekeeper.decide("sam@navy.ml", envelope).verdict], envelope, HoldSource.POSTFIX_HOLD
        )
        assert held is not None
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        late = gatekeeper.hold(
            [gatekeeper.decide("kim@navy.ml", envelope).verdict], envelope, HoldSource.POSTFIX_HOLD
        )
        waited = time.monotonic() - started
        time.sleep(2 - waited)
        lock.execute("COMMIT")
        lock.close()
        assert late is None and 0.4 < waited < 1.5, waited
        deadline = time.monotonic() + 10
        while "voided" not in caplog.text:  # once the lock is let go
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.1)
        assert [hold.recipients for hold in runtime.store.holds.in_state()] == [["sam@navy.ml"]]
    finally:
        runtime.close()
        notices.stop()
    told = [m.data.decode(errors="replace") for m in notices.messages]
    assert len(told) == 1 and "sam@navy.ml" in told[0] and "kim@navy.ml" not in told[0]


def test_the_journal_file_says_a_hold_was_voided(tmp_path):
    journal = FileJournal(tmp_path / "journal.jsonl")
    try:
        held = HeldMessage(
            "h1", HoldSource.POSTFIX_HOLD, "a@x.org", ("b@navy.ml",), ("r",), (None,)
        )
        journal.hold(held)
        journal.void_hold("h1", "recorded after the adapter had answered without it")
    finally:
        journal.close()
    records = list(read_journal(tmp_path / "journal.jsonl"))
    assert [(r["kind"], r["hold_id"]) for r in records] == [("hold", "h1"), ("void", "h1")]
    assert records[1]["why"] == "recorded after the adapter had answered without it"
