"""Queue ids against a real Postfix: a forged or nonexistent queue id releases nothing, a
hold without a queue id finds its own message, a release touches exactly one message, and a
kill -9 between postsuper and the store is finished on the next start.

A release teaches typogate that its sender meant the domain (and two, the organisation):
each test releases to a typo domain and from a sender of its own."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from mta import TYPOGATE, Postfix, Server, Sink, hold_through_postfix, postfix_root, swaks
from ports import free_port

from typogate.gateway.postfix_queue import PostfixQueue, QueueError, valid_queue_id
from typogate.gateway.quarantine import HoldError, Quarantine
from typogate.store import Store
from typogate.web.held_message import described

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(shutil.which("postfix") is None, reason="make test installs postfix"),
]

CONFIG = """
[domains]
protected = ["army.mil", "navy.mil", "example.org"]
[actions]
typo = "hold"
[release]
postfix_config = "{postfix}"
"""


class Flow:
    """A Postfix whose policy service is typogate (holding typos), and its store."""

    def __init__(self, tmp: Path, **settings: str) -> None:
        self.sink = Sink(free_port()).start()
        self.postfix = Postfix(postfix_root(), free_port(), self.sink.port, dict(settings))
        self.config = tmp / "typogate.toml"
        self.config.write_text(CONFIG.format(postfix=self.postfix.config_dir))
        self.db_path = tmp / "typogate.db"
        self.db = f"sqlite:///{self.db_path}"
        self.policy_port = free_port()
        self.tmp = tmp
        self.policy = self.start_policy()
        self.postfix.settings["smtpd_recipient_restrictions"] = (
            f"check_policy_service {{ inet:127.0.0.1:{self.policy_port}, default_action=DUNNO }}"
        )
        self.postfix.start()

    def start_policy(self) -> Server:
        args = ["policy", "--listen", f"127.0.0.1:{self.policy_port}"]
        args += ["--config", str(self.config), "--db", self.db]
        return Server(args, self.policy_port, self.tmp / "policy.log").start()

    def stop(self) -> None:
        self.postfix.remove()
        self.policy.stop()
        self.sink.stop()

    def held_ids(self) -> set[str]:
        return {m.queue_id for m in PostfixQueue(str(self.postfix.config_dir)).messages() if m.held}

    def release(self, hold_id: str, *extra: str, env: dict | None = None):
        """``typogate release``; its stderr as one line (the console wraps long lines)."""
        done = subprocess.run(
            [TYPOGATE, "release", hold_id, "--db", self.db, "--config", str(self.config), *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout, " ".join(done.stderr.split())
        )

    def row(self, hold_id: str) -> tuple[str, str | None]:
        with sqlite3.connect(self.db_path) as db:
            return db.execute(
                "SELECT state, queue_id FROM holds WHERE hold_id = ?", (hold_id,)
            ).fetchone()

    def forge(self, queue_id: str, sender: str, recipient: str) -> str:
        """A policy request as a local attacker sends it, straight to the policy service;
        the id of the hold it made."""
        with socket.create_connection(("127.0.0.1", self.policy_port), timeout=10) as client:
            client.sendall(
                b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
                + f"queue_id={queue_id}\nsender={sender}\nrecipient={recipient}\n\n".encode()
            )
            answer = client.recv(4096).decode()
        assert answer.startswith("action=HOLD"), answer
        with sqlite3.connect(self.db_path) as db:
            (hold_id,) = db.execute(
                "SELECT hold_id FROM holds WHERE sender = ? ORDER BY time DESC LIMIT 1", (sender,)
            ).fetchone()
        return hold_id


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    flow = Flow(tmp_path_factory.mktemp("queue-ids"))
    yield flow
    flow.stop()


@pytest.fixture(scope="module")
def late_flow(tmp_path_factory):
    """Postfix's default: the queue file is opened after the first accepted recipient, so
    the policy request for that recipient carries no queue id."""
    flow = Flow(tmp_path_factory.mktemp("late-queue-ids"), smtpd_delay_open_until_valid_rcpt="yes")
    yield flow
    flow.stop()


def test_queue_id_syntax():
    for good in ("310B720E041", "D15CA20EA6F", "4Lk5Nc0dqzz1l6Y", "3Pb2jN0SvkzJ"):
        assert valid_queue_id(good), good
    for bad in ("ALL", "deferred", "hold", "-", "", "ABC DEF", "310b720e041", "A" * 40, "../x"):
        assert not valid_queue_id(bad), bad
    with pytest.raises(QueueError, match="not a Postfix queue id"):
        PostfixQueue().release("ALL")


FORGED = ["ALL", "deferred", "hold", "-", "ABC DEF", "../../x", "2C0FFEE1 ALL", "ＡＬＬ"]


def test_a_forged_queue_id_releases_nothing(flow):
    held = [hold_through_postfix(flow.postfix, flow.db, f"{n}@army.ml") for n in ("ida", "joe")]
    in_hold = flow.held_ids()
    assert {h["queue_id"] for h in held} <= in_hold
    hold_id = flow.forge("ALL", "mallory@example.org", "loot@army.ml")
    assert flow.row(hold_id) == ("held", None)  # the forged id was not stored
    refused = flow.release(hold_id)  # the command, as the attacker's release link would
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "nothing was done" in refused.stderr
    assert flow.held_ids() >= in_hold  # every message still held
    store = Store(flow.db, writer=False)
    quarantine = Quarantine(store.holds, PostfixQueue(str(flow.postfix.config_dir)))
    try:
        for forged in FORGED:
            hold_id = flow.forge(forged, "mallory@example.org", "loot@army.ml")
            assert flow.row(hold_id) == ("held", None), forged
            with pytest.raises(HoldError, match="nothing was done"):
                quarantine.release(hold_id, "mallory", "forged")
            with pytest.raises(HoldError, match="nothing was done"):
                quarantine.delete(hold_id, "mallory", "forged", confirm=True)
            assert flow.held_ids() >= in_hold, forged
            assert flow.row(hold_id)[0] == "held"
    finally:
        store.close()
    assert "released from hold" not in flow.postfix.log


def test_another_messages_queue_id_releases_nothing(flow):
    victim = hold_through_postfix(flow.postfix, flow.db, "kay@army.ml", sender="bob@example.org")
    hold_id = flow.forge(victim["queue_id"], "mallory@example.org", "kay@army.ml")
    refused = flow.release(hold_id)
    assert refused.returncode == 1 and "nothing was done" in refused.stderr
    assert victim["queue_id"] in flow.held_ids()
    # Nor does a well-formed id of no message at all.
    hold_id = flow.forge("ABCDEF12345", "mallory@example.org", "lou@army.ml")
    refused = flow.release(hold_id)
    assert refused.returncode == 1 and "queue id ABCDEF12345" in refused.stderr
    assert victim["queue_id"] in flow.held_ids()
    assert "released from hold" not in flow.postfix.log


def _new_hold(flow: Flow, recipient: str) -> dict:
    """Send one message to ``recipient`` through Postfix; the new hold it made."""
    with sqlite3.connect(flow.db_path) as db:
        seen = {row[0] for row in db.execute("SELECT hold_id FROM holds")}
    result = swaks(flow.postfix.smtpd_port, "alice@example.org", [recipient])
    assert "250 2.0.0 Ok: queued" in result.stdout, result.stdout
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with sqlite3.connect(flow.db_path) as db:
            rows = db.execute("SELECT hold_id, queue_id FROM holds").fetchall()
        new = [row for row in rows if row[0] not in seen]
        if new:
            return {"hold_id": new[0][0], "queue_id": new[0][1]}
        time.sleep(0.1)
    raise AssertionError("hold not recorded")


def test_a_hold_without_queue_id_releases_exactly_its_own_message(late_flow):
    flow = late_flow
    first = _new_hold(flow, "max@army.ml")
    second = _new_hold(flow, "max@army.ml")  # the same envelope
    other = _new_hold(flow, "zoe@army.ml")
    assert first["queue_id"] is None  # Postfix had no queue file yet when it asked
    before = flow.held_ids()
    assert len(before) == 3
    done = flow.release(second["hold_id"])
    assert done.returncode == 0, done.stderr
    after = flow.held_ids()
    assert len(after) == 2 and after < before  # exactly one message left the hold queue
    released = (before - after).pop()
    assert flow.row(second["hold_id"]) == ("released", released)
    done = flow.release(first["hold_id"])
    assert done.returncode == 0, done.stderr
    assert len(flow.held_ids()) == 1
    assert flow.row(first["hold_id"])[1] != released  # its own message, not the same again
    flow.postfix.flush()
    flow.sink.wait_for(lambda m: m.recipients == ["max@army.ml"])
    assert flow.row(other["hold_id"])[0] == "held"


def _killing_postsuper(folder: Path, when: str) -> dict:
    """A PATH on which postsuper is Postfix's own, but the command that ran it is killed
    with SIGKILL right ``before`` or ``after`` it ran: a crash at that very point."""
    real = shutil.which("postsuper")
    folder.mkdir(exist_ok=True)
    script = folder / "postsuper"
    run = f'{real} "$@"; status=$?'
    kill = "kill -9 $PPID"
    body = f"{kill}\n" if when == "before" else f"{run}\n{kill}\nexit $status\n"
    script.write_text(f"#!/bin/sh\n{body}")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def test_kill_9_after_postsuper_is_finished_on_the_next_start(flow, tmp_path):
    hold = hold_through_postfix(flow.postfix, flow.db, "kim@navy.ml", sender="ken@example.org")
    crashed = flow.release(hold["hold_id"], env=_killing_postsuper(tmp_path / "bin", "after"))
    assert crashed.returncode == -9
    assert hold["queue_id"] not in flow.held_ids()  # Postfix released it ...
    assert flow.row(hold["hold_id"])[0] == "held"  # ... the store had no time to say so
    # The gateway's next start finishes it against the real queue.
    flow.policy.stop()
    flow.policy = flow.start_policy()
    assert flow.row(hold["hold_id"])[0] == "released"
    assert "finished after an interruption" in flow.policy.log
    again = flow.release(hold["hold_id"])
    assert "already released" in again.stdout
    flow.postfix.flush()
    flow.sink.wait_for(lambda m: m.recipients == ["kim@navy.ml"])
    assert len(flow.sink.to("kim@navy.ml")) == 1


def test_kill_9_before_postsuper_is_carried_out_by_the_next_command(flow, tmp_path):
    doomed = hold_through_postfix(flow.postfix, flow.db, "liz@amry.mil", sender="lou@example.org")
    hold = hold_through_postfix(flow.postfix, flow.db, "lee@arny.mil", sender="lou@example.org")
    crashed = subprocess.run(
        [TYPOGATE, "delete", doomed["hold_id"], "--yes", "--db", flow.db]
        + ["--config", str(flow.config)],
        env=_killing_postsuper(tmp_path / "after", "after"),
        capture_output=True,
        timeout=60,
    )
    assert crashed.returncode == -9
    queue = PostfixQueue(str(flow.postfix.config_dir))
    assert doomed["queue_id"] not in {m.queue_id for m in queue.messages()}
    assert flow.row(doomed["hold_id"])[0] == "held"
    # This command first finishes the delete (Postfix did it: no postsuper needed), then
    # is killed before its own postsuper runs.
    crashed = flow.release(hold["hold_id"], env=_killing_postsuper(tmp_path / "before", "before"))
    assert crashed.returncode == -9
    assert flow.row(doomed["hold_id"])[0] == "deleted"
    assert hold["queue_id"] in flow.held_ids()  # nothing happened in Postfix
    assert flow.row(hold["hold_id"])[0] == "held"
    # Any release command first finishes what was interrupted: the release is carried out.
    other = flow.release("no-such-hold")
    assert other.returncode == 1
    assert flow.row(hold["hold_id"])[0] == "released"
    assert hold["queue_id"] not in flow.held_ids()
    flow.postfix.flush()
    flow.sink.wait_for(lambda m: m.recipients == ["lee@arny.mil"])


def test_one_message_per_release_even_for_two_recipients_of_one_hold(flow):
    result = swaks(flow.postfix.smtpd_port, "amy@example.org", ["ann@navvy.mil", "art@navvy.mil"])
    assert "250 2.0.0 Ok: queued" in result.stdout, result.stdout
    with sqlite3.connect(flow.db_path) as db:
        rows = db.execute(
            "SELECT hold_id, queue_id FROM holds WHERE sender = 'amy@example.org'"
        ).fetchall()
    assert len(rows) == 2 and rows[0][1] == rows[1][1]  # one message, held twice
    before = flow.held_ids()
    assert flow.release(rows[0][0]).returncode == 0
    assert before - flow.held_ids() == {rows[0][1]}
    # The other hold of the same message moved with it; nothing else did.
    assert flow.row(rows[1][0])[0] == "released"
    second = flow.release(rows[1][0])
    assert second.returncode == 0 and "already released" in second.stdout
    assert flow.held_ids() == before - {rows[0][1]}


def test_a_forged_queue_id_shows_nothing_of_another_message(flow):
    """The sender's release page reads the held message's subject and recipients from
    Postfix's queue: for a forged hold naming another message's queue id, nothing."""
    sent = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{flow.postfix.smtpd_port}", "--from"]
        + ["vera@example.org", "--to", "pat@amry.mil", "--header", "Subject: Board minutes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "250 2.0.0 Ok: queued" in sent.stdout, sent.stdout
    victim = None
    deadline = time.monotonic() + 20
    while victim is None and time.monotonic() < deadline:
        with sqlite3.connect(flow.db_path) as db:
            victim = db.execute(
                "SELECT hold_id, queue_id FROM holds WHERE sender = 'vera@example.org'"
            ).fetchone()
        time.sleep(0.1)
    assert victim is not None
    forged = flow.forge(victim[1], "mallory@example.org", "pat@amry.mil")
    store = Store(flow.db, writer=False)
    quarantine = Quarantine(store.holds, PostfixQueue(str(flow.postfix.config_dir)))
    try:
        seen = described(quarantine, store.holds.get(forged))
        assert not seen.described and seen.subject is None
        own = described(quarantine, store.holds.get(victim[0]))
        assert own.described and own.subject == "Board minutes"
    finally:
        store.close()
