"""sendmail(1) through a real Postfix and the typogate milter (non_smtpd_milters)."""

from __future__ import annotations

import json
import shutil
import time
from email import message_from_bytes

import pytest
from mta import Postfix, Server, Sink, postfix_root
from ports import free_port

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(shutil.which("sendmail") is None, reason="make test installs postfix"),
]

CONFIG = """
[domains]
protected = ["army.mil", "navy.mil", "example.org"]

[[rules]]
domain = "navy.ml"
action = "hold"

[gateway]
notice_relay = "127.0.0.1:{smtpd_port}"
notice_from = "typogate@typogate-test.localdomain"
journal = "journal.jsonl"
"""

MESSAGE = "From: alice@example.org\nTo: {to}\nSubject: {subject}\n\n{subject} body\n"


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("milter")
    sink = Sink(free_port()).start()
    smtpd_port = free_port()
    config = tmp / "typogate.toml"
    config.write_text(CONFIG.format(smtpd_port=smtpd_port))
    milter_port = free_port()
    milter = Server(
        ["milter", "--listen", f"inet:{milter_port}@127.0.0.1", "--config", str(config)],
        milter_port,
        tmp / "milter.log",
    ).start()
    postfix = Postfix(
        postfix_root(),
        smtpd_port,
        sink.port,
        {
            "non_smtpd_milters": f"inet:127.0.0.1:{milter_port}",
            "milter_default_action": "accept",
            "milter_protocol": "6",
        },
    )
    try:
        postfix.start()
        yield postfix, sink, tmp
    finally:
        postfix.remove()
        milter.stop()
        sink.stop()


def test_sendmail_typo_recipient_is_removed_and_the_rest_delivered(flow):
    postfix, sink, _ = flow
    text = MESSAGE.format(to="john@army.ml, jane@army.mil", subject="mixed-sendmail")
    done = postfix.sendmail("alice@example.org", ["john@army.ml", "jane@army.mil"], text)
    assert done.returncode == 0, done.stderr
    delivered = sink.wait_for(lambda m: b"mixed-sendmail body" in m.data)
    assert delivered.recipients == ["jane@army.mil"]
    assert "did you mean army.mil" in delivered.headers["X-Typogate"]
    notice = sink.wait_for(
        lambda m: m.recipients == ["alice@example.org"] and b"john@army.ml" in m.data
    )
    assert message_from_bytes(notice.data)["Auto-Submitted"] == "auto-replied"
    time.sleep(1)
    assert sink.to("john@army.ml") == []


def test_sendmail_with_only_typo_recipients_bounces_with_a_standard_dsn(flow):
    postfix, sink, _ = flow
    text = MESSAGE.format(to="john@army.ml", subject="only-typo")
    postfix.sendmail("alice@example.org", ["john@army.ml"], text)
    bounce = sink.wait_for(
        lambda m: m.recipients == ["alice@example.org"] and b"multipart/report" in m.data
    )
    report = message_from_bytes(bounce.data)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert b"army.mil" in bounce.data
    assert sink.to("john@army.ml") == []


def test_sendmail_hold_is_quarantined_and_recorded(flow):
    postfix, sink, tmp = flow
    text = MESSAGE.format(to="sam@navy.ml", subject="held-sendmail")
    postfix.sendmail("alice@example.org", ["sam@navy.ml"], text)
    deadline = time.monotonic() + 20
    held = []
    while time.monotonic() < deadline and not held:
        journal = tmp / "journal.jsonl"
        if journal.exists():
            held = [
                json.loads(line)
                for line in journal.read_text().splitlines()
                if '"kind": "hold"' in line and "sam@navy.ml" in line
            ]
        time.sleep(0.2)
    assert held and held[0]["source"] == "milter-quarantine"
    queue_id = held[0]["queue_id"]
    assert queue_id and f"{queue_id}!" in postfix.queue()
    postfix.postsuper("-H", queue_id)
    postfix.flush()
    sink.wait_for(lambda m: "sam@navy.ml" in m.recipients and b"held-sendmail body" in m.data)


def _sendmail_without_milter(default_action: str):
    sink = Sink(free_port()).start()
    dead = free_port()  # the milter is not running
    postfix = Postfix(
        postfix_root(),
        free_port(),
        sink.port,
        {"non_smtpd_milters": f"inet:127.0.0.1:{dead}", "milter_default_action": default_action},
    )
    postfix.start()
    return postfix, sink, dead


def test_milter_down_fail_open_delivers():
    postfix, sink, _ = _sendmail_without_milter("accept")
    try:
        postfix.sendmail(
            "alice@example.org", ["john@army.ml"], MESSAGE.format(to="john@army.ml", subject="open")
        )
        sink.wait_for(lambda m: b"open body" in m.data)
    finally:
        postfix.remove()
        sink.stop()


def test_milter_down_fail_closed_keeps_the_message_queued(tmp_path):
    postfix, sink, dead = _sendmail_without_milter("tempfail")
    milter = None
    try:
        postfix.sendmail(
            "alice@example.org",
            ["jane@army.mil"],
            MESSAGE.format(to="jane@army.mil", subject="closed"),
        )
        time.sleep(3)
        assert sink.messages == []
        # Nothing lost: the message waits in Postfix's maildrop or queue.
        queue = postfix.root / "queue"
        waiting = [
            p
            for d in ("maildrop", "incoming", "deferred")
            for p in (queue / d).rglob("*")
            if p.is_file()
        ]
        assert waiting, postfix.log
        config = tmp_path / "typogate.toml"
        config.write_text(CONFIG.format(smtpd_port=postfix.smtpd_port))
        milter = Server(
            ["milter", "--listen", f"inet:{dead}@127.0.0.1", "--config", str(config)],
            dead,
            tmp_path / "milter.log",
        ).start()
        sink.wait_for(lambda m: b"closed body" in m.data, timeout=90)
    finally:
        if milter is not None:
            milter.stop()
        postfix.remove()
        sink.stop()


def test_a_relay_that_never_answers_does_not_hold_up_the_milter(tmp_path):
    """Notices are sent from a thread of their own: a notice relay that accepts the
    connection and never speaks must not keep libmilter's thread past Postfix's milter
    timeout. Fail-closed (tempfail), Postfix would defer the message at every try, and the
    right recipient would never get it."""
    import socket

    sink = Sink(free_port()).start()
    with socket.socket() as mute:  # listens, never accepts: connects, never greets
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        config = tmp_path / "typogate.toml"
        config.write_text(CONFIG.replace("{smtpd_port}", str(mute.getsockname()[1])))
        milter_port = free_port()
        milter = Server(
            ["milter", "--listen", f"inet:{milter_port}@127.0.0.1", "--config", str(config)],
            milter_port,
            tmp_path / "milter.log",
        ).start()
        postfix = Postfix(
            postfix_root(),
            free_port(),
            sink.port,
            {
                "non_smtpd_milters": f"inet:127.0.0.1:{milter_port}",
                "milter_default_action": "tempfail",
                "milter_protocol": "6",
                "milter_content_timeout": "5s",
            },
        )
        try:
            postfix.start()
            for n in range(3):  # three notices waiting for the mute relay
                subject = f"mute-relay-{n}"
                postfix.sendmail(
                    "alice@example.org",
                    ["john@army.ml", "jane@army.mil"],
                    MESSAGE.format(to="john@army.ml, jane@army.mil", subject=subject),
                )
                delivered = sink.wait_for(lambda m, s=subject: s.encode() in m.data, timeout=60)
                assert delivered.recipients == ["jane@army.mil"]
        finally:
            postfix.remove()
            milter.stop()
            sink.stop()
