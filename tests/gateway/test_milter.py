"""sendmail(1) through a real Postfix and the typogate milter (non_smtpd_milters)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from email import message_from_bytes

import pytest
from mta import Postfix, Server, Sink, postfix_root
from ports import free_port

from typogate.store import Store

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


@contextmanager
def milter_flow(tmp, *store: str, more: str = ""):
    """Postfix whose sendmail(1) goes through a typogate milter (its ``store`` options, the
    configuration's journal file without them; ``more`` configuration after CONFIG) to a
    recording sink: (postfix, sink, tmp)."""
    sink = Sink(free_port()).start()
    smtpd_port = free_port()
    config = tmp / "typogate.toml"
    config.write_text(CONFIG.format(smtpd_port=smtpd_port) + more)
    milter_port = free_port()
    milter = Server(
        ["milter", "--listen", f"inet:{milter_port}@127.0.0.1", "--config", str(config), *store],
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


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    with milter_flow(tmp_path_factory.mktemp("milter")) as started:
        yield started


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
    right recipient would never get it. Nor may it hold up a stop: before, SIGTERM waited a
    minute for the notices (systemd kills at 30 s), the store's last writes behind them."""
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
            assert milter.process is not None
            milter.process.terminate()
            assert milter.process.wait(timeout=15) == 0, milter.log  # on its own, not killed
            not_sent = [line for line in milter.log.splitlines() if "outcome=not-sent" in line]
            assert len(not_sent) == 3, milter.log
            assert all("typogate stopped before the relay took it" in n for n in not_sent)
        finally:
            postfix.remove()
            milter.stop()
            sink.stop()


def sendmail_bytes(postfix, sender: bytes, recipients: list[bytes], subject: str) -> None:
    """sendmail(1) with arguments written byte for byte, as a local user can."""
    text = f"From: alice@example.org\nSubject: {subject}\n\n{subject} body\n".encode()
    done = subprocess.run(
        ["sendmail", "-C", str(postfix.config_dir), "-i", "-f", os.fsdecode(sender)]
        + [os.fsdecode(r) for r in recipients],
        input=text,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def test_a_sender_that_is_not_utf8_never_stops_the_notices(flow):
    """Before: sendmail -f with a byte that is not UTF-8 (Postfix takes it from a local
    user) and a typo recipient: the notice to that sender could not be written, the
    UnicodeEncodeError ended the notice thread, and no sender was told of anything again
    until a restart. Now that one notice is logged as not sent, and the next goes out."""
    postfix, sink, tmp = flow
    sendmail_bytes(postfix, b"al\xffice@example.org", [b"jim@army.ml", b"joe@army.mil"], "odd")
    deadline = time.monotonic() + 20
    while "outcome=not-sent" not in (log := (tmp / "milter.log").read_text(errors="replace")):
        assert time.monotonic() < deadline, log[-2000:]
        time.sleep(0.2)
    assert "Traceback" not in log and "not valid UTF-8" in log, log[-2000:]
    sendmail_bytes(postfix, b"alice@example.org", [b"kim@army.ml", b"joe@army.mil"], "after")
    sink.wait_for(lambda m: m.recipients == ["alice@example.org"] and b"kim@army.ml" in m.data)


def test_a_recipient_that_is_not_utf8_is_never_waved_through(flow):
    """Before: sendmail to jo\\xffhn@army.mil was judged by its domain and let pass, and
    the notice about another recipient, naming it among the delivered, could not be
    written: pymilter answered 451 for its untrapped exception. Now typogate cannot read
    the address, and defers the message, as for any address it cannot read."""
    postfix, sink, tmp = flow
    sendmail_bytes(
        postfix, b"alice@example.org", [b"jo\xffhn@army.mil", b"ted@army.ml"], "bad rcpt"
    )
    deadline = time.monotonic() + 20
    while "jo\\udcffhn@army.mil" not in (log := (tmp / "milter.log").read_text(errors="replace")):
        assert time.monotonic() < deadline, log[-2000:]
        time.sleep(0.2)
    assert "Traceback" not in log, log[-3000:]
    assert "not valid UTF-8" in log, log[-2000:]
    time.sleep(1)
    assert not [m for m in sink.messages if b"bad rcpt body" in m.data]


def test_a_sender_that_is_not_utf8_is_held_and_recorded_in_the_store(tmp_path):
    """Before, with a database: the hold of a message from a sendmail -f sender with a byte
    that is not UTF-8 could not be written (UnicodeEncodeError, no database error), so the
    milter could not hold it; its verdict event ended the store's writer process, and the
    batch with it. Now both are recorded, the byte as U+FFFD, and the sender gets no notice
    (it would go to another address)."""
    with milter_flow(tmp_path, "--db", f"sqlite:///{tmp_path / 'typogate.db'}") as started:
        postfix, sink, _ = started
        sendmail_bytes(postfix, b"al\xffice@example.org", [b"sam@navy.ml"], "held odd")
        store = Store(f"sqlite:///{tmp_path / 'typogate.db'}", writer=False)
        try:
            deadline = time.monotonic() + 20
            while not (held := store.holds.in_state()):
                assert time.monotonic() < deadline, (tmp_path / "milter.log").read_text()[-3000:]
                time.sleep(0.2)
            assert held[0].sender == "al\ufffdice@example.org"
            while not store.history.event_count():
                assert time.monotonic() < deadline, (tmp_path / "milter.log").read_text()[-3000:]
                time.sleep(0.2)
        finally:
            store.close()
        log = (tmp_path / "milter.log").read_text(errors="replace")
        assert "Traceback" not in log and "stopped (exit code" not in log, log[-3000:]
        assert "outcome=not-sent" in log


def test_a_subject_that_is_not_utf8_is_quoted_with_replacement_characters(flow):
    """Before: an old mail program's raw Latin-1 subject ("Gr\\xfc\\xdfe", no RFC 2047
    words) was quoted in the notice as "Gr e": its two letters gone without a trace, a
    word the sender never wrote. Now each such byte shows as U+FFFD."""
    postfix, sink, _ = flow
    text = b"From: alice@example.org\nSubject: Gr\xfc\xdfe latin1\n\nlatin1 body\n"
    done = subprocess.run(
        ["sendmail", "-C", str(postfix.config_dir), "-i", "-f", "alice@example.org"]
        + ["jim@army.ml", "joe@army.mil"],
        input=text,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    notice = sink.wait_for(
        lambda m: m.recipients == ["alice@example.org"] and b"jim@army.ml" in m.data
    )
    body = message_from_bytes(notice.data).get_payload(decode=True).decode()
    assert "Gr\ufffd\ufffde latin1" in body, body


@pytest.mark.postgres
def test_a_store_that_stops_answering_defers_a_held_message_in_seconds(tmp_path, postgres):
    """Before: with the store's PostgreSQL frozen (as a server stuck on its disk is), the
    milter waited for the hold's record as long as it took; Postfix waits
    milter_content_timeout (300 s) and then applies milter_default_action: with accept
    (fail-open, as here), the message typogate meant to hold is delivered. Now it is
    deferred within limits.hold_record_seconds, waits in Postfix's queue, the record the
    server makes once it runs again is voided, and pickup's retry (every 5 s here) is
    held, once: nothing lost, nothing delivered, one hold."""
    limits = "[limits]\nhold_record_seconds = 1.0\n"
    with milter_flow(tmp_path, "--db", postgres.url, more=limits) as (postfix, sink, tmp):
        postgres.freeze()
        try:
            postfix.sendmail(
                "alice@example.org", ["sam@navy.ml"], MESSAGE.format(to="sam@navy.ml", subject="x")
            )
            deadline = time.monotonic() + 20
            while "cannot record the hold now" not in postfix.log and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "4.3.0 typogate cannot record the hold now" in postfix.log, postfix.log
        finally:
            postgres.thaw()
        milter_log = tmp / "milter.log"
        deadline = time.monotonic() + 30
        while "voided" not in milter_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "the hold of sam@navy.ml was recorded after" in milter_log.read_text()
        # The retry may come before the void or after it (pickup wakes every 5 s): either
        # way it ends as one message in Postfix's hold queue under one live hold.
        deadline = time.monotonic() + 30
        while "milter triggers HOLD action" not in postfix.log and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "triggers HOLD action; from=<alice@example.org> to=<sam@navy.ml>" in postfix.log
        queue = postfix.root / "queue"
        assert [p for p in (queue / "hold").rglob("*") if p.is_file()], postfix.log
        store = Store(postgres.url, writer=False)
        try:
            held = store.holds.in_state()
        finally:
            store.close()
        assert [h.recipients for h in held] == [["sam@navy.ml"]], held
        assert sink.to("sam@navy.ml") == []


@pytest.mark.parametrize(
    "shown",
    [
        '"john@army.mil" <john@evil.com>',
        "=?utf-8?q?john=40army=2Emil?= <john@evil.com>",
        # A full-width @-sign, which a screen shows as one: the milter kept only names
        # with an @-sign of ASCII, and this one went to evil.com.
        "=?utf-8?q?john=EF=BC=A0army=2Emil?= <john@evil.com>",
        # The address backwards after a right-to-left override (U+202E): shown forwards.
        "=?utf-8?q?=E2=80=AElim=2Eymra=40nhoj?= <john@evil.com>",
    ],
)
def test_a_recipient_shown_as_an_address_we_protect_is_removed(flow, shown):
    """Before: a reply to mail whose Reply-To was "john@army.mil" <john@evil.com> (as a
    mail program shows it: john@army.mil) went to evil.com. The milter reads the To and
    Cc headers' display names (encoded words decoded) and takes it for the look-alike."""
    postfix, sink, _ = flow
    subject = f"shown-{len(shown)}"
    text = MESSAGE.format(to=f"{shown}, jane@army.mil", subject=subject)
    done = postfix.sendmail("alice@example.org", ["john@evil.com", "jane@army.mil"], text)
    assert done.returncode == 0, done.stderr
    delivered = sink.wait_for(lambda m: f"{subject} body".encode() in m.data)
    assert delivered.recipients == ["jane@army.mil"]
    assert delivered.headers["X-Typogate"] == "john@evil.com: typo.confusable"
    notice = sink.wait_for(
        lambda m: m.recipients == ["alice@example.org"] and subject.encode() in m.data
    )
    assert b"is shown as john@army.mil" in notice.data.replace(b"\n", b" ")
    time.sleep(1)
    assert sink.to("john@evil.com") == []


def test_a_hostile_to_header_is_read_and_the_look_alike_in_it_still_removed(flow):
    """A To header of 3,000 nested comments before the look-alike: the first version read
    it with the standard library's header parser, which ran out of stack on it, and the
    recipient went to evil.com. It is read in one pass now."""
    postfix, sink, _ = flow
    nested = "(" * 3000 + ")" * 3000
    text = MESSAGE.format(
        to=f'{nested} jane@army.mil, "john@army.mil" <john@evil.com>', subject="nested"
    )
    done = postfix.sendmail("alice@example.org", ["john@evil.com", "jane@army.mil"], text)
    assert done.returncode == 0, done.stderr
    delivered = sink.wait_for(lambda m: b"nested body" in m.data)
    assert delivered.recipients == ["jane@army.mil"]
    time.sleep(1)
    assert sink.to("john@evil.com") == []
