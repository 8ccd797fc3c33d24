"""What a sender and a mail admin see when typogate acts on mail: the notices (through a real
Postfix to a recording sink) and the log lines, with the default configuration too."""

from __future__ import annotations

import json
import re
import shutil
import socket
import sqlite3
import subprocess
import time
from email import message_from_bytes
from email.message import Message
from email.policy import default

import pytest
from mta import (
    TYPOGATE,
    Delivered,
    Postfix,
    Server,
    Sink,
    hold_through_postfix,
    postfix_root,
    talk,
)
from ports import free_port

from typogate.config import mail_name

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(shutil.which("sendmail") is None, reason="make test installs postfix"),
]

MESSAGE = (
    "From: alice@example.org\nTo: {to}\nSubject: {subject}\n"
    "Date: Tue, 01 Dec 2026 09:30:00 +0100\nMessage-ID: <{subject}@example.org>\n\nbody\n"
)


def _notice(sink: Sink, about: str) -> Message:
    """The notice to alice@example.org whose subject mentions ``about``, parsed."""

    def is_notice(message: Delivered) -> bool:
        parsed = message_from_bytes(message.data, policy=default)
        return message.recipients == ["alice@example.org"] and about in str(parsed["Subject"])

    return message_from_bytes(sink.wait_for(is_notice).data, policy=default)


def _log_lines(server: Server, event: str) -> list[dict[str, str]]:
    """The key=value pairs of the server's log lines for ``event``."""
    found = []
    for line in server.log.splitlines():
        if f"event={event} " in line:
            pairs = line.split(": ", 1)[1]
            found.append(
                {k: json.loads(v) if v.startswith('"') else v for k, v in _PAIR.findall(pairs)}
            )
    return found


_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def _port_25_is_free() -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Postfix binds it
        try:
            probe.bind(("127.0.0.1", 25))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not _port_25_is_free(), reason="127.0.0.1:25 is taken by this machine's MTA")
def test_default_configuration_tells_the_sender_and_logs_the_removal(tmp_path):
    """With no notice settings at all, the milter's removal reaches the sender through the
    local MTA (127.0.0.1:25, here a throwaway Postfix) and is logged: Postfix logs nothing
    about a milter's delrcpt."""
    sink = Sink(free_port()).start()
    config = tmp_path / "typogate.toml"
    config.write_text('[domains]\nprotected = ["army.mil"]\n[gateway]\njournal = "j.jsonl"\n')
    milter_port = free_port()
    milter = Server(
        ["milter", "--listen", f"inet:{milter_port}@127.0.0.1", "--config", str(config)],
        milter_port,
        tmp_path / "milter.log",
    ).start()
    postfix = Postfix(
        postfix_root(),
        25,
        sink.port,
        {"non_smtpd_milters": f"inet:127.0.0.1:{milter_port}", "milter_protocol": "6"},
    )
    try:
        postfix.start()
        text = MESSAGE.format(to="john@army.ml, jane@army.mil", subject="defaults")
        postfix.sendmail("alice@example.org", ["john@army.ml", "jane@army.mil"], text)
        delivered = sink.wait_for(lambda m: b"Subject: defaults" in m.data)
        assert delivered.recipients == ["jane@army.mil"]
        notice = _notice(sink, "Not delivered to john@army.ml")
        assert notice["From"] == f"postmaster@{mail_name()}"
        body = notice.get_content()
        assert "Probably meant: john@army.mil" in body
        assert "Delivered to: jane@army.mil" in body
        (removal,) = _log_lines(milter, "remove")
        assert removal["recipient"] == "john@army.ml"
        assert removal["sender"] == "alice@example.org"
        assert removal["suggestion"] == "army.mil"
        assert removal["queue_id"] and removal["notice"] == "queued"
        assert "jane@army.mil" not in milter.log  # an allowed recipient leaves no line
    finally:
        postfix.remove()
        milter.stop()
        sink.stop()


@pytest.fixture(scope="module")
def milter_flow(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("notices")
    sink = Sink(free_port()).start()
    smtpd_port = free_port()
    config = tmp / "typogate.toml"
    config.write_text(
        f"""
[domains]
protected = ["army.mil", "navy.mil", "example.org"]
[[rules]]
domain = "navy.ml"
action = "hold"
[gateway]
notice_relay = "127.0.0.1:{smtpd_port}"
journal = "journal.jsonl"
[release]
secret = "a-long-enough-test-secret"
base_url = "https://typogate.example.org"
"""
    )
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
        {"non_smtpd_milters": f"inet:127.0.0.1:{milter_port}", "milter_protocol": "6"},
    )
    try:
        postfix.start()
        yield postfix, sink, milter, tmp
    finally:
        postfix.remove()
        milter.stop()
        sink.stop()


def test_held_notice_shows_the_whole_message_and_no_internals(milter_flow):
    postfix, sink, milter, tmp = milter_flow
    recipients = ["sam@navy.ml", "jane@army.mil", "bob@example.org"]
    text = MESSAGE.format(to=", ".join(recipients), subject="Quarterly-plan")
    postfix.sendmail("alice@example.org", recipients, text)
    notice = _notice(sink, "Quarterly-plan")
    assert notice["Subject"] == 'Not sent yet: "Quarterly-plan" - check the address sam@navy.ml'
    assert notice["In-Reply-To"] == "<Quarterly-plan@example.org>"
    body = notice.get_content()
    assert "has not been delivered to anyone yet" in body
    assert "Probably meant: sam@navy.mil" in body
    assert re.search(r"Subject: +Quarterly-plan", body)
    assert re.search(r"Date: +Tue, 01 Dec 2026 09:30:00 \+0100", body)
    assert re.search(r"To: +sam@navy\.ml, jane@army\.mil, bob@example\.org", body)
    assert "https://typogate.example.org/release/" in body
    (hold,) = _log_lines(milter, "hold")
    queue_id = hold["queue_id"]
    # What the sender reads carries no internals: no hold id, no queue id, no postsuper.
    assert hold["hold"] not in body and queue_id not in body and "postsuper" not in body
    assert notice["X-Typogate-Hold"] == hold["hold"]  # for the admin it is forwarded to
    assert hold["recipients"] == "sam@navy.ml" and hold["notice"] == "queued"
    (verdict,) = [v for v in _log_lines(milter, "verdict") if v["recipient"] == "sam@navy.ml"]
    assert verdict["action"] == "hold" and verdict["rule"] == "rule:domain:navy.ml"
    assert verdict["queue_id"] == queue_id


def test_removed_notice_names_several_wrong_addresses_once(milter_flow):
    postfix, sink, milter, _ = milter_flow
    recipients = ["john@army.ml", "bob@example.org", "jane@army.mil", "kim@exampel.org"]
    text = MESSAGE.format(to=", ".join(recipients), subject="two-typos")
    postfix.sendmail("alice@example.org", recipients, text)
    notice = _notice(sink, "two-typos")
    assert notice["Subject"] == 'Not delivered to john@army.ml, kim@exampel.org: "two-typos"'
    body = notice.get_content()
    assert "If you meant john@army.mil and kim@example.org" in " ".join(body.split())
    assert re.search(r"Delivered to: +bob@example\.org, jane@army\.mil", body)
    time.sleep(1)
    notices = [m for m in sink.to("alice@example.org") if b"two-typos" in m.data]
    assert len(notices) == 1  # one notice per message, not one per removed recipient
    removed = [line["recipient"] for line in _log_lines(milter, "remove")]
    assert "john@army.ml" in removed and "kim@exampel.org" in removed


def test_the_address_a_notice_suggests_can_be_written_again(milter_flow):
    # Typogate reads the local part unquoted, as Postfix hands it on ("john doe"); the
    # sender must be told addresses that are one each, quoted, not two words before an
    # @-sign, and not that the removed one was delivered to.
    postfix, sink, _, _ = milter_flow
    recipients = ['"john doe"@army.ml', "jane@army.mil"]
    text = MESSAGE.format(to=", ".join(recipients), subject="quoted-local")
    assert postfix.sendmail("alice@example.org", recipients, text).returncode == 0
    notice = _notice(sink, "quoted-local")
    assert notice["Subject"] == 'Not delivered to "john doe"@army.ml: "quoted-local"'
    body = " ".join(notice.get_content().split())
    assert 'Probably meant: "john doe"@army.mil' in body
    assert 'If you meant "john doe"@army.mil: send' in body
    assert 'To: "john doe"@army.ml, jane@army.mil Delivered to: jane@army.mil What' in body


def _notice_about(sink: Sink, about: str, timeout: float = 30.0) -> Delivered:
    """The notice, to whomever, whose subject mentions ``about``."""

    def is_notice(message: Delivered) -> bool:
        subject = message_from_bytes(message.data, policy=default)["Subject"]
        return message.sender in ("", "<>") and about in str(subject)

    return sink.wait_for(is_notice, timeout)


def test_a_recipient_or_message_id_with_a_control_character_still_gets_a_notice(milter_flow):
    """Before: a recipient with a vertical tab (Postfix takes it) went into the notice's
    Subject, and a Message-ID with a form feed into its In-Reply-To; the email package
    refuses both ("Header values may not contain linefeed"), the milter deferred the
    message, and the sender was never told. Now the address is shown with the character
    written as its escape, and a reference that is no single line is left out."""
    postfix, sink, _, _ = milter_flow
    text = MESSAGE.format(to="sam@navy.ml", subject="odd-recipient")
    assert postfix.sendmail("alice@example.org", ['"sa\x0bm"@navy.ml'], text).returncode == 0
    notice = message_from_bytes(_notice_about(sink, "odd-recipient").data, policy=default)
    assert '"sa\\x0bm"@navy.ml' in str(notice["Subject"]), notice["Subject"]
    assert '"sa\\x0bm"@navy.ml' in notice.get_content()
    text = MESSAGE.format(to="sam@navy.ml", subject="odd-reference").replace(
        "<odd-reference@", "<odd\x0creference@"
    )
    assert postfix.sendmail("alice@example.org", ["sam@navy.ml"], text).returncode == 0
    notice = message_from_bytes(_notice_about(sink, "odd-reference").data, policy=default)
    assert notice["In-Reply-To"] is None and notice["References"] is None


@pytest.fixture(scope="module")
def policy_flow(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("policy-notices")
    (tmp / "etc").mkdir()
    sink = Sink(free_port()).start()
    postfix = Postfix(postfix_root(), free_port(), sink.port)
    config = tmp / "etc" / "typogate.toml"
    config.write_text(
        f"""
[domains]
protected = ["army.mil", "example.org"]
[actions]
typo = "hold"
[store]
url = "sqlite:///typogate.db"
[release]
postfix_config = "{postfix.config_dir}"
[gateway]
notice_relay = "127.0.0.1:{postfix.smtpd_port}"
"""
    )
    port = free_port()
    policy = Server(
        ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(config)],
        port,
        tmp / "policy.log",
    ).start()
    postfix.settings["smtpd_recipient_restrictions"] = (
        f"check_policy_service {{ inet:127.0.0.1:{port}, default_action=DUNNO }}"
    )
    try:
        postfix.start()
        yield postfix, sink, policy, config
    finally:
        postfix.remove()
        policy.stop()
        sink.stop()


def test_policy_hold_notice_says_what_it_cannot_show(policy_flow):
    postfix, sink, policy, config = policy_flow
    # store.url is relative: the store sits beside the configuration file.
    hold = hold_through_postfix(postfix, f"sqlite:///{config.parent / 'typogate.db'}", "s@army.ml")
    notice = _notice(sink, "s@army.ml")
    body = notice.get_content()
    said = " ".join(body.split())
    assert "Probably meant: s@army.mil" in said
    assert "cannot show the subject or the other recipients" in said
    assert "the whole message is held" in said
    assert hold["hold_id"] not in body and hold["queue_id"] not in body
    (line,) = [h for h in _log_lines(policy, "hold") if h["hold"] == hold["hold_id"]]
    assert line["adapter"] == "policy" and line["queue_id"] == hold["queue_id"]
    assert "http://127.0.0.1:8025/release/" in body  # release.base_url's default


@pytest.mark.parametrize(
    ("sender", "unquoted", "about"),
    [
        ('" :]"@example.org', " :]@example.org", "odd-sender@army.ml"),
        ('"bob<carol"@example.org', "bob<carol@example.org", "other-mailbox@army.ml"),
    ],
)
def test_a_sender_with_an_unusual_but_valid_address_is_held_once_and_told(
    policy_flow, sender, unquoted, about
):
    """Before: Postfix hands a policy service a quoted sender unquoted. For
    ``" :]"@example.org`` (RFC 5321 allows it) Python's address parser raised IndexError
    while the notice's To was written, after the hold was recorded: Postfix was told 451
    "cannot record the hold", at every retry another hold was recorded, and no one was
    told. For ``"bob<carol"@example.org`` smtplib read the address again and **handed
    the notice, release link and all, to carol@example.org**, another mailbox. Now the
    hold is recorded once and the notice goes to the sender, addressed as it was written."""
    postfix, sink, _, config = policy_flow
    replies = talk(
        postfix.smtpd_port, [f"MAIL FROM:<{sender}>", f"RCPT TO:<{about}>", "DATA"], "Subject: hi"
    )
    assert [code for code, _ in replies] == [250, 250, 354, 250], replies
    notice = _notice_about(sink, about)
    assert notice.recipients == [sender], notice.recipients
    assert str(message_from_bytes(notice.data, policy=default)["To"]) == sender
    with sqlite3.connect(config.parent / "typogate.db") as db:
        held = db.execute("SELECT count(*) FROM holds WHERE sender = ?", (unquoted,)).fetchone()
    assert held == (1,)


def test_admin_commands_read_the_configuration_from_the_environment(policy_flow, tmp_path):
    """holds and release run from any folder with only $TYPOGATE_CONFIG: the store's URL and
    the Postfix instance come from the file (release used to fail on
    /etc/postfix/main.cf), and the release is logged."""
    postfix, sink, _, config = policy_flow
    hold = hold_through_postfix(postfix, f"sqlite:///{config.parent / 'typogate.db'}", "r@army.ml")
    env = {"TYPOGATE_CONFIG": str(config), "PATH": "/usr/sbin:/usr/bin:/bin"}

    def typogate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TYPOGATE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    listed = typogate("holds", "--json")
    assert listed.returncode == 0, listed.stderr
    assert hold["hold_id"] in [row["hold_id"] for row in json.loads(listed.stdout)]
    released = typogate("release", hold["hold_id"], "--why", "meant it")
    assert released.returncode == 0, released.stderr
    assert f"event=release hold={hold['hold_id']} outcome=released" in released.stderr
    assert 'why="meant it"' in released.stderr
    postfix.flush()
    sink.wait_for(lambda m: "r@army.ml" in m.recipients)
    assert list(tmp_path.iterdir()) == []  # no store made where the command ran


def test_a_warned_sender_is_told_when_warn_notices_are_on(tmp_path):
    """A warn verdict lets the message through with a header nobody reads: with
    gateway.warn_notices the sender hears of it too (and without, does not)."""
    from mta import swaks

    sink = Sink(free_port()).start()
    postfix = Postfix(postfix_root(), free_port(), sink.port)
    port = free_port()
    config = tmp_path / "typogate.toml"
    config.write_text(
        f"""
[domains]
protected = ["army.mil", "example.org"]
[[rules]]
domain = "warn.example"
action = "warn"
[gateway]
notice_relay = "127.0.0.1:{postfix.smtpd_port}"
warn_notices = true
"""
    )
    policy = Server(
        ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(config)],
        port,
        tmp_path / "policy.log",
    ).start()
    postfix.settings["smtpd_recipient_restrictions"] = (
        f"check_policy_service {{ inet:127.0.0.1:{port}, default_action=DUNNO }}"
    )
    try:
        postfix.start()
        result = swaks(postfix.smtpd_port, "alice@example.org", ["bob@warn.example"], "warned")
        assert "250 2.0.0 Ok: queued" in result.stdout
        sink.wait_for(lambda m: m.recipients == ["bob@warn.example"])  # delivered all the same
        notice = _notice(sink, "bob@warn.example")
        said = " ".join(notice.get_content().split())
        assert "Your message was delivered, but this address may be a typing mistake" in said
    finally:
        postfix.remove()
        policy.stop()
        sink.stop()
