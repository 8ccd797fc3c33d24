"""Hold and release end to end: Postfix HOLD recorded in the store, released by an admin or
by the sender's signed link; twice is harmless, deleting needs confirmation, bad links fail."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid

import pytest
from mta import TYPOGATE, Postfix, Server, Sink, hold_through_postfix, postfix_root, talk
from ports import free_port

from typogate.gateway.postfix_queue import PostfixQueue
from typogate.gateway.quarantine import InvalidReleaseLink, Quarantine
from typogate.store import Store

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
secret = "a-long-enough-test-secret"
base_url = "https://typogate.example.org"
[gateway]
notice_relay = "127.0.0.1:{smtpd}"
"""


@pytest.fixture(scope="module")
def held_flow(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release")
    sink = Sink(free_port(), smtputf8=True).start()  # a released UTF-8 address arrives
    postfix = Postfix(postfix_root(), free_port(), sink.port)
    config = tmp / "typogate.toml"
    config.write_text(CONFIG.format(postfix=postfix.config_dir, smtpd=postfix.smtpd_port))
    db = f"sqlite:///{tmp / 'typogate.db'}"
    port = free_port()
    policy = Server(
        ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(config), "--db", db],
        port,
        tmp / "policy.log",
    ).start()
    postfix.settings["smtpd_recipient_restrictions"] = (
        f"check_policy_service {{ inet:127.0.0.1:{port}, default_action=DUNNO }}"
    )
    try:
        postfix.start()
        yield postfix, sink, config, db
    finally:
        postfix.remove()
        policy.stop()
        sink.stop()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TYPOGATE, *args], capture_output=True, text=True, timeout=60)


def test_the_list_of_holds_reads_as_a_sentence_when_empty(tmp_path):
    """Before: an empty table's header under "0 held message(s)" folded to its width."""
    from typogate.store import HeldMessage
    from typogate.vocabulary import HoldSource

    db = f"sqlite:///{tmp_path / 'typogate.db'}"
    Store(db).close()
    listed = cli("holds", "--db", db)
    assert listed.returncode == 0 and listed.stdout == "No held messages.\n", listed.stdout
    store = Store(db)
    reasons, meant = ("typo.suffix",), ("army.mil",)
    store.hold(
        HeldMessage(
            "h1", HoldSource.MILTER_QUARANTINE, "ann@example.org", ("sam@army.ml",), reasons, meant
        )
    )
    store.close()
    listed = cli("holds", "--db", db)
    assert listed.stdout.splitlines()[0].strip() == "1 held message", listed.stdout
    assert "sam@army.ml" in listed.stdout and "army.mil" in listed.stdout
    assert cli("holds", "--db", db, "--state", "released").stdout == "No released messages.\n"


def test_admin_release_twice_is_harmless_and_audited(held_flow):
    postfix, sink, config, db = held_flow
    hold = hold_through_postfix(postfix, db, "sam@army.ml")
    listed = cli("holds", "--db", db, "--json")
    assert hold["hold_id"] in listed.stdout and "army.mil" in listed.stdout
    first = cli(
        "release", hold["hold_id"], "--db", db, "--config", str(config), "--why", "meant it"
    )
    assert first.returncode == 0, first.stderr
    assert "released" in first.stdout
    postfix.flush()
    sink.wait_for(lambda m: "sam@army.ml" in m.recipients)
    again = cli("release", hold["hold_id"], "--db", db, "--config", str(config))
    assert again.returncode == 0 and "already released" in again.stdout
    store = Store(db)
    trail = Quarantine(store.holds).trail(hold["hold_id"])
    store.close()
    assert [(t.action, t.why) for t in trail] == [
        ("release", "meant it"),
        ("release", "released by an admin"),
    ]


def test_delete_needs_confirmation(held_flow):
    postfix, sink, config, db = held_flow
    hold = hold_through_postfix(postfix, db, "tom@navy.ml")
    refused = cli("delete", hold["hold_id"], "--db", db, "--config", str(config))
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert f"{hold['queue_id']}!" in postfix.queue()  # still held
    done = cli("delete", hold["hold_id"], "--yes", "--db", db, "--config", str(config))
    assert done.returncode == 0 and "deleted" in done.stdout
    assert hold["queue_id"] not in postfix.queue()


def test_sender_link_releases_once_and_bad_links_are_refused(held_flow):
    postfix, sink, config, db = held_flow
    # Another sender: alice released mail to army.ml above, which taught that she means it.
    hold = hold_through_postfix(postfix, db, "ann@army.ml", sender="cleo@example.org")
    # The sender's notice carries the link.
    notice = sink.wait_for(
        lambda m: m.recipients == ["cleo@example.org"] and b"ann@army.ml" in m.data
    )
    body = notice.headers.get_payload(decode=True).decode()
    token = re.search(r"https://typogate\.example\.org/release/(\S+)", body).group(1)
    link = cli("release-link", hold["hold_id"], "--db", db, "--config", str(config)).stdout.strip()
    assert link.startswith("https://typogate.example.org/release/")
    tampered = cli("release", "--token", token[:-3] + "xyz", "--db", db, "--config", str(config))
    assert tampered.returncode == 1 and "not valid" in tampered.stderr
    used = cli("release", "--token", token, "--db", db, "--config", str(config))
    assert used.returncode == 0, used.stderr
    postfix.flush()
    sink.wait_for(lambda m: "ann@army.ml" in m.recipients)
    reused = cli("release", "--token", token, "--db", db, "--config", str(config))
    assert reused.returncode == 1 and "already used" in reused.stderr
    store = Store(db)
    # What cleo said is on the record, with her hold's recipients (before: its nonce alone).
    (word,) = [w for w in store.holds.said() if w.sender == "cleo@example.org"]
    assert (word.hold_id, word.recipients) == (hold["hold_id"], ["ann@army.ml"])
    quarantine = Quarantine(
        store.holds, PostfixQueue(str(postfix.config_dir)), "a-long-enough-test-secret"
    )
    old = quarantine.release_link(hold["hold_id"], "http://x").rsplit("/", 1)[1]
    time.sleep(2)
    with pytest.raises(InvalidReleaseLink, match="expired"):
        quarantine.release_by_link(old, max_age=1)
    store.close()


@pytest.mark.parametrize(
    "recipient",
    [
        '"sue doe"@army.ml',  # Postfix queues the local part unquoted
        "sue@ARMY.ML",
        "sue@\uff41\uff52\uff4d\uff59.ml",  # full width: Postfix queues it as typed
        "sue@army\u200b.ml",  # U+200B, which UTS #46 ignores
    ],
)
def test_a_hold_is_released_however_its_recipient_was_spelled(held_flow, recipient):
    # The hold names where the mail goes (army.ml); Postfix's queue names the recipient as
    # the client spelled it. The release must find the message all the same.
    postfix, sink, config, db = held_flow
    marker = uuid.uuid4().hex
    sender = f"s{marker[:8]}@example.org"
    utf8 = "" if recipient.isascii() else " SMTPUTF8"
    lines = [f"MAIL FROM:<{sender}>{utf8}", f"RCPT TO:<{recipient}>", "DATA"]
    replies = talk(postfix.smtpd_port, lines, f"Subject: {marker}\r\n\r\n{marker}")
    assert "queued" in replies[-1][1], replies
    store = Store(db, writer=False)
    try:
        deadline = time.monotonic() + 20
        while not (held := [h for h in store.holds.in_state() if h.sender == sender]):
            assert time.monotonic() < deadline, "hold not recorded"
            time.sleep(0.1)
    finally:
        store.close()
    released = cli("release", held[0].hold_id, "--db", db, "--config", str(config))
    assert released.returncode == 0, released.stderr
    postfix.flush()
    sink.wait_for(lambda m: marker.encode() in m.data)


def test_the_hold_list_reads_at_80_columns_and_shows_a_look_alike_for_what_it_is(held_flow):
    """Before: `typogate holds` cut every one of its seven columns at 80 (the hold id that
    `release` takes read "0dec9ad…"), and listed rita@аrmy.mil (a Cyrillic а) beside
    "army.mil", the same letters twice, to the admin about to release it."""
    postfix, _, config, db = held_flow
    sender = f"s{uuid.uuid4().hex[:8]}@example.org"
    lines = [f"MAIL FROM:<{sender}> SMTPUTF8", "RCPT TO:<rita@\u0430rmy.mil>", "DATA"]
    replies = talk(postfix.smtpd_port, lines, "Subject: figures\r\n\r\nfigures")
    assert "queued" in replies[-1][1], replies
    deadline = time.monotonic() + 20
    while sender not in (listed := cli("holds", "--db", db, "--config", str(config))).stdout:
        assert time.monotonic() < deadline, listed.stdout
        time.sleep(0.2)
    row = listed.stdout[listed.stdout.index(sender) :]
    assert "rita@\u0430rmy.mil" in row and "rita@xn--rmy-5cd.mil" in row, listed.stdout
    assert "typo.confusable: did you mean army.mil?" in row, listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80, listed.stdout
    held = json.loads(cli("holds", "--db", db, "--config", str(config), "--json").stdout)
    for hold in held:  # every id whole, and the queue id Postfix knows it by
        assert hold["hold_id"] in listed.stdout and hold["queue_id"] in listed.stdout


def test_text_from_mail_cannot_drive_the_admins_terminal(held_flow):
    """Before: `typogate holds` wrote a sender's address to the admin's terminal as it came.
    One with an escape sequence in it (ESC [2J clears the screen, ESC ]0; sets the window's
    title) was played by the terminal, and one with a right-to-left override (U+202E)
    showed the rest of its line backwards. Now each such character is shown as its escape."""
    postfix, _, config, db = held_flow
    tag = uuid.uuid4().hex[:8]
    sender = f'"s{tag}\x1b[2J\x1b]0;owned\x07\u202elim.ymra"@example.org'
    lines = [f"MAIL FROM:<{sender}> SMTPUTF8", "RCPT TO:<rita@army.ml>", "DATA"]
    replies = talk(postfix.smtpd_port, lines, "Subject: figures\r\n\r\nfigures")
    assert "queued" in replies[-1][1], replies
    deadline = time.monotonic() + 20
    while tag not in (listed := cli("holds", "--db", db, "--config", str(config))).stdout:
        assert time.monotonic() < deadline, listed.stdout
        time.sleep(0.2)
    assert "\x1b" not in listed.stdout and "\u202e" not in listed.stdout, repr(listed.stdout)
    wide = subprocess.run(  # the address on one line
        [TYPOGATE, "holds", "--db", db, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    shown = f'"s{tag}\\x1b[2J\\x1b]0;owned\\x07\\u202elim.ymra"@example.org'
    assert shown in wide.stdout, wide.stdout
