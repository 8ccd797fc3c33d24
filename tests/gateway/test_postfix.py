"""End to end through a real Postfix: rejects with the suggestion, mixed recipients, HOLD and
release with postsuper -H, and what happens to mail when typogate is down."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from mta import Postfix, Server, Sink, postfix_root, swaks
from ports import free_port

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(shutil.which("postfix") is None, reason="make test installs postfix"),
]

CONFIG = """
[domains]
protected = ["army.mil", "navy.mil", "gmail.com", "example.org"]

[[rules]]
domain = "navy.ml"
action = "hold"

[[rules]]
domain = "warn.example"
action = "warn"

[gateway]
notice_relay = "127.0.0.1:{smtpd_port}"
notice_from = "typogate@typogate-test.localdomain"
journal = "journal.jsonl"
"""


def policy_restriction(port: int, default_action: str) -> str:
    # Relaying is decided by smtpd_relay_restrictions; this list only asks typogate.
    return f"check_policy_service {{ inet:127.0.0.1:{port}, default_action={default_action} }}"


def start_policy(tmp: Path, smtpd_port: int, mode: str = "enforce") -> Server:
    config = tmp / "typogate.toml"
    config.write_text(CONFIG.format(smtpd_port=smtpd_port))
    port = free_port()
    return Server(
        ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(config), "--mode", mode],
        port,
        tmp / "policy.log",
    ).start()


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """Sink <- Postfix (policy service with default_action=DUNNO) -> typogate policy."""
    tmp = tmp_path_factory.mktemp("flow")
    sink = Sink(free_port()).start()
    smtpd_port = free_port()
    policy = start_policy(tmp, smtpd_port)
    postfix = Postfix(
        postfix_root(),
        smtpd_port,
        sink.port,
        {"smtpd_recipient_restrictions": policy_restriction(policy.port, "DUNNO")},
    )
    try:
        postfix.start()
        yield postfix, sink, policy, tmp
    finally:
        postfix.remove()
        policy.stop()
        sink.stop()


def test_typo_recipient_is_rejected_with_the_suggestion(flow):
    postfix, sink, _, _ = flow
    result = swaks(postfix.smtpd_port, "alice@example.org", ["john@army.ml"])
    assert re.search(r"<\*\* +550 5\.1\.2 .*army\.ml.*did you mean army\.mil\?", result.stdout)
    assert "ask your mail admin" in result.stdout
    time.sleep(1)
    assert sink.to("john@army.ml") == []


def test_a_domain_typed_without_its_dot_is_rejected_with_the_suggestion(flow):
    # A bare host: Postfix would relay it on (here to the sink) or bounce it, later.
    postfix, sink, _, _ = flow
    result = swaks(postfix.smtpd_port, "alice@example.org", ["jane@gmailcom"])
    assert re.search(r"<\*\* +550 5\.1\.2 .*gmailcom.*did you mean gmail\.com\?", result.stdout)
    time.sleep(1)
    assert sink.to("jane@gmailcom") == []


def test_mixed_recipients_reach_only_the_good_one(flow):
    postfix, sink, _, _ = flow
    result = swaks(
        postfix.smtpd_port, "alice@example.org", ["john@army.ml", "jane@army.mil"], "mixed"
    )
    assert "250 2.0.0 Ok: queued" in result.stdout, result.stdout
    delivered = sink.wait_for(lambda m: "jane@army.mil" in m.recipients)
    assert delivered.recipients == ["jane@army.mil"]
    assert b"mixed" in delivered.data


def test_warn_delivers_with_a_header(flow):
    postfix, sink, _, _ = flow
    swaks(postfix.smtpd_port, "alice@example.org", ["bob@warn.example"])
    delivered = sink.wait_for(lambda m: "bob@warn.example" in m.recipients)
    assert "blocked.domain" in delivered.headers["X-Typogate"]


def test_hold_lands_in_the_hold_queue_and_postsuper_releases_it(flow):
    postfix, sink, policy, tmp = flow
    result = swaks(postfix.smtpd_port, "alice@example.org", ["sam@navy.ml"], "held body")
    queued = re.search(r"250 2\.0\.0 Ok: queued as (\w+)", result.stdout)
    assert queued, result.stdout
    queue_id = queued.group(1)
    # Postfix marks held messages with "!" in the queue listing.
    deadline = time.monotonic() + 20
    while f"{queue_id}!" not in postfix.queue() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"{queue_id}!" in postfix.queue()
    assert sink.to("sam@navy.ml") == []
    # typogate recorded the hold, durably, with the queue id it can be released by.
    holds = [json.loads(line) for line in (tmp / "journal.jsonl").read_text().splitlines()]
    held = [h for h in holds if h["kind"] == "hold" and h["recipients"] == ["sam@navy.ml"]]
    assert held and held[0]["queue_id"] == queue_id
    # The sender got typogate's notice (Postfix sends none for HOLD).
    notice = sink.wait_for(lambda m: "alice@example.org" in m.recipients and m.sender in ("", "<>"))
    assert notice.headers["X-Typogate-Hold"] == held[0]["hold_id"]
    assert "navy.ml" in notice.headers["Subject"]
    # Release: postsuper -H, and the message goes on to its recipient.
    postfix.postsuper("-H", queue_id)
    postfix.flush()
    delivered = sink.wait_for(lambda m: "sam@navy.ml" in m.recipients)
    assert b"held body" in delivered.data


def _flow_without_typogate(tmp: Path, default_action: str) -> tuple[Postfix, Sink, int]:
    sink = Sink(free_port()).start()
    dead_port = free_port()  # typogate is not running here
    postfix = Postfix(
        postfix_root(),
        free_port(),
        sink.port,
        {"smtpd_recipient_restrictions": policy_restriction(dead_port, default_action)},
    )
    postfix.start()
    return postfix, sink, dead_port


def test_typogate_down_fail_open_delivers(tmp_path):
    postfix, sink, _ = _flow_without_typogate(tmp_path, "DUNNO")
    try:
        result = swaks(postfix.smtpd_port, "alice@example.org", ["john@army.ml"])
        assert "250 2.0.0 Ok: queued" in result.stdout
        sink.wait_for(lambda m: "john@army.ml" in m.recipients)
    finally:
        postfix.remove()
        sink.stop()


def test_typogate_down_fail_closed_defers_and_nothing_is_lost(tmp_path):
    postfix, sink, dead_port = _flow_without_typogate(tmp_path, "DEFER")
    policy = None
    try:
        result = swaks(postfix.smtpd_port, "alice@example.org", ["jane@army.mil"])
        # A temporary refusal: the sending client keeps the message and retries.
        assert re.search(r"<\*\* +4\d\d ", result.stdout), result.stdout
        assert "queued" not in result.stdout
        # typogate comes back on the same port: the retry goes through.
        config = tmp_path / "typogate.toml"
        config.write_text(CONFIG.format(smtpd_port=postfix.smtpd_port))
        policy = Server(
            ["policy", "--listen", f"127.0.0.1:{dead_port}", "--config", str(config)],
            dead_port,
            tmp_path / "policy.log",
        ).start()
        retry = swaks(postfix.smtpd_port, "alice@example.org", ["jane@army.mil"])
        assert "250 2.0.0 Ok: queued" in retry.stdout, retry.stdout
        sink.wait_for(lambda m: "jane@army.mil" in m.recipients)
    finally:
        if policy is not None:
            policy.stop()
        postfix.remove()
        sink.stop()


def test_a_master_cf_service_asks_typogate_as_postfix_md_writes_it(tmp_path):
    """docs/postfix.md's submission lines, on this instance's smtpd service (no TLS or SASL
    here: its clients are let through by mynetworks): postconf -P takes them, the service
    asks typogate, and its own default_action is fail-open when typogate is down."""
    sink = Sink(free_port()).start()
    smtpd_port = free_port()
    policy = start_policy(tmp_path, smtpd_port)
    postfix = Postfix(postfix_root(), smtpd_port, sink.port)
    try:
        postfix.start()
        service = f"{smtpd_port}/inet"
        restrictions = f"check_policy_service,inet:127.0.0.1:{policy.port},permit_mynetworks,reject"
        for setting in (
            f"{service}/smtpd_recipient_restrictions={restrictions}",
            f"{service}/smtpd_policy_service_default_action=DUNNO",
            f"{service}/smtpd_policy_service_timeout=10s",
        ):
            subprocess.run(
                ["postconf", "-c", str(postfix.config_dir), "-P", setting], check=True, timeout=30
            )
        subprocess.run(
            ["postfix", "-c", str(postfix.config_dir), "reload"],
            capture_output=True,
            check=True,
            timeout=60,
        )
        time.sleep(1)  # master starts the service again with its new options
        refused = swaks(smtpd_port, "alice@example.org", ["john@army.ml"])
        assert re.search(r"<\*\* +550 5\.1\.2 .*did you mean army\.mil\?", refused.stdout), (
            refused.stdout
        )
        policy.stop()
        passed = swaks(smtpd_port, "alice@example.org", ["john@army.ml"])
        assert "250 2.0.0 Ok: queued" in passed.stdout, passed.stdout
        sink.wait_for(lambda m: "john@army.ml" in m.recipients)
    finally:
        policy.stop()
        postfix.remove()
        sink.stop()
