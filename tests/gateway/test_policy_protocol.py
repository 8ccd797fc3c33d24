"""The policy protocol against the real server over a socket: normal requests, garbage,
over-long lines, a request that never ends, other states, audit mode, a connection flood."""

from __future__ import annotations

import socket
import time

import pytest
from mta import Server
from ports import free_port

from typogate.store import Store

CONFIG = """
[domains]
protected = ["army.mil", "gmail.com"]

[[rules]]
domain = "warn.example"
action = "warn"

[[rules]]
domain = "held.example"
action = "hold"

[[rules]]
domain = "bücher.example"
action = "warn"

[[rules]]
domain = "nаvy.mil"
action = "reject"
message = "nаvy.mil (xn--nvy-6cd.mil) is a look-alike of navy.mil."

[gateway]
journal = "journal.jsonl"
"""


def request(recipient: str, state: str = "RCPT", **extra: str) -> bytes:
    attributes = {
        "request": "smtpd_access_policy",
        "protocol_state": state,
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.7",
        "sender": "alice@example.org",
        "recipient": recipient,
        "queue_id": "4F2A81C0",
        **extra,
    }
    return "".join(f"{k}={v}\n" for k, v in attributes.items()).encode() + b"\n"


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self) -> str:
        while b"\n\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        answer, self.buffer = self.buffer.split(b"\n\n", 1)
        assert answer.startswith(b"action=")
        return answer[len(b"action=") :].decode()

    def close(self) -> None:
        self.sock.close()


def start(tmp_path, *flags: str, config_text: str = CONFIG) -> Server:
    config = tmp_path / "typogate.toml"
    config.write_text(config_text)
    port = free_port()
    return Server(
        ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(config), *flags],
        port,
        tmp_path / "policy.log",
    ).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    service = start(tmp_path_factory.mktemp("policy"))
    yield service
    service.stop()


def test_many_requests_on_one_connection(server):
    client = Client(server.port)
    client.send(request("john@army.ml") + request("jane@army.mil") + request("x@warn.example"))
    reject, allow, warn = client.answer(), client.answer(), client.answer()
    assert reject.startswith("550 5.1.2 ") and "did you mean army.mil?" in reject
    assert allow == "DUNNO"
    assert warn.startswith("PREPEND X-Typogate: x@warn.example")
    client.close()


def test_answers_are_ascii_and_show_a_look_alike_in_its_ascii_form(server):
    # Postfix hands the answer's text to the client as it is, and the policy request does
    # not say whether the client asked for SMTPUTF8: so the text is ASCII (RFC 5321), a
    # domain in its A-label form. For a look-alike that is also the one form that shows
    # the difference ("аrmy.mil looks like a mistake: did you mean army.mil?" did not).
    client = Client(server.port)
    for spelling in ("ivan@\u0430rmy.mil", "ivan@xn--rmy-5cd.mil"):
        client.send(request(spelling))
        answer = client.answer()
        assert answer.isascii(), answer
        assert answer.startswith(
            "550 5.1.2 xn--rmy-5cd.mil looks like a mistake: did you mean army.mil? "
            "If xn--rmy-5cd.mil is right"
        ), answer
    client.send(request("ivan@xn--gmal-zta.com"))  # decodes to a letter no domain may have
    answer = client.answer()
    assert answer.startswith("450 4.1.3 ") and answer.isascii(), answer
    client.send(request("x@b\u00fccher.example"))
    answer = client.answer()
    assert answer == "PREPEND X-Typogate: x@xn--bcher-kva.example: blocked.domain", answer
    client.send(request("x@n\u0430vy.mil"))  # a rule as the monitor writes it: both forms
    answer = client.answer()
    assert answer.startswith(
        "550 5.7.1 n\\u0430vy.mil (xn--nvy-6cd.mil) is a look-alike of navy.mil. "
        "If xn--nvy-6cd.mil is right"
    ), answer
    client.close()


def test_other_states_and_requests_get_dunno(server):
    client = Client(server.port)
    client.send(request("john@army.ml", state="DATA"))
    assert client.answer() == "DUNNO"
    client.send(request("john@army.ml", state="END-OF-MESSAGE"))
    assert client.answer() == "DUNNO"
    client.send(b"request=junk\nrecipient=john@army.ml\nprotocol_state=RCPT\n\n")
    assert client.answer() == "DUNNO"
    client.send(request(""))  # an RCPT with no recipient is never waved through
    assert client.answer().startswith("450 4.1.3 ")
    client.close()


def test_garbage_and_unknown_attributes_get_dunno_and_the_connection_goes_on(server):
    client = Client(server.port)
    client.send(b"this is not an attribute\n\xff\xfe\x00binary\n\n")
    assert client.answer() == "DUNNO"
    client.send(request("john@army.ml", some_future_attribute="whatever"))
    assert client.answer().startswith("550 ")
    client.send(request("not an address"))  # never waved through: deferred, logged
    assert client.answer().startswith("450 4.1.3 ")
    client.close()
    assert "malformed or over-long line" in server.log


def test_an_over_long_line_is_discarded(server):
    client = Client(server.port)
    client.send(b"recipient=" + b"a" * 100_000 + b"\n\n")
    assert client.answer() == "DUNNO"
    client.send(request("john@army.ml"))  # the connection still works
    assert client.answer().startswith("550 ")
    client.close()
    assert "longer than" in server.log


def test_a_request_without_blank_line_does_not_hang_the_server(server):
    stuck = Client(server.port)
    stuck.send(b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@army.ml\n")
    other = Client(server.port)  # others are served meanwhile
    other.send(request("john@army.ml"))
    assert other.answer().startswith("550 ")
    stuck.close()  # end of input mid-request: dropped, no answer, no crash
    other.send(request("jane@army.mil"))
    assert other.answer() == "DUNNO"
    other.close()


def test_a_flood_of_connections_is_bounded(tmp_path):
    service = start(tmp_path, "--max-connections", "20")
    try:
        served = [Client(service.port) for _ in range(10)]
        for client in served:
            client.send(request("john@army.ml"))
        assert all(client.answer().startswith("550 ") for client in served)
        # Over the bound, every new connection is served: the one idle the longest makes
        # room (Postfix reconnects an idle connection that was closed).
        flood = []
        for _ in range(40):
            client = Client(service.port)
            client.send(request("john@army.ml"))
            assert client.answer().startswith("550 ")
            flood.append(client)
        closed = 0
        for client in served + flood:
            try:
                client.send(request("jane@army.mil"))
                assert client.answer() == "DUNNO"
            except ConnectionError:
                closed += 1
        assert closed >= 30  # at most 20 open at once: the oldest went first
        for client in served + flood:
            client.close()
        assert "closed the one idle the longest" in service.log
    finally:
        service.stop()


def test_audit_mode_decides_and_logs_but_answers_dunno(tmp_path):
    service = start(tmp_path, "--mode", "audit")
    try:
        client = Client(service.port)
        client.send(request("john@army.ml"))
        assert client.answer() == "DUNNO"
        client.close()
        deadline = time.monotonic() + 5
        journal = tmp_path / "journal.jsonl"
        while time.monotonic() < deadline and not journal.exists():
            time.sleep(0.1)
        time.sleep(1)  # the journal writer flushes twice a second
        text = journal.read_text()
        assert '"action": "reject"' in text and '"mode": "audit"' in text
    finally:
        service.stop()


def test_bad_listen_address_is_bad_usage(tmp_path):
    import subprocess

    from mta import TYPOGATE

    done = subprocess.run(
        [TYPOGATE, "policy", "--listen", "nowhere"], capture_output=True, text=True
    )
    assert done.returncode == 2


@pytest.mark.postgres
def test_a_nul_from_a_policy_client_loses_no_event_and_no_lesson(tmp_path, postgres):
    """Before: PostgreSQL refuses a NUL in text. One request with a NUL in its sender or
    recipient (Postfix sends none, but any local client may) made the writer's whole batch
    fail; it was kept for a retry and failed again until it was dropped as "database
    unavailable", with every event beside it and after it, up to 20,000; the lesson its
    delivery taught did the same to the relationships. Now a NUL is kept as U+FFFD."""
    trusting = CONFIG.replace("[gateway]", '[gateway]\ntrusted_networks = ["192.0.2.0/24"]')
    service = start(tmp_path, "--db", postgres.url, config_text=trusting)
    try:
        client = Client(service.port)
        client.send(request("jo\x00hn@army.ml", sender="al\x00ice@example.org"))
        assert client.answer().startswith("550 5.1.2")
        client.send(request("john@army.ml"))
        assert client.answer().startswith("550 5.1.2")
        client.send(request("bob@friend.example", sender="al\x00ice@example.org"))
        assert client.answer() == "DUNNO"
        client.close()
    finally:
        service.stop()  # the writer writes what is queued on the way out
    assert "cannot write" not in service.log and "dropped" not in service.log, service.log
    store = Store(postgres.url, writer=False)
    try:
        events = store.history.events()
        learned = {(c.sender, c.recipient_domain) for c in store.history.relationships()}
    finally:
        store.close()
    assert {(e.recipient, e.sender) for e in events} == {
        ("jo\ufffdhn@army.ml", "al\ufffdice@example.org"),
        ("john@army.ml", "alice@example.org"),
    }
    assert ("al\ufffdice@example.org", "friend.example") in learned


@pytest.mark.postgres
def test_a_sender_longer_than_320_characters_is_held_whole(tmp_path, postgres):
    """Before: Postfix takes a sender of 600 characters, and PostgreSQL refused it in the
    hold's 320-character column: the message could not be held, and was deferred ("451
    4.3.0 typogate cannot record the hold") until its sender's server gave up. On SQLite
    it was held. Now it is held, on both, with the sender whole."""
    sender = "a" * 600 + "@example.org"
    service = start(tmp_path, "--db", postgres.url)
    try:
        client = Client(service.port)
        client.send(request("bob@held.example", sender=sender))
        answer = client.answer()
        client.close()
    finally:
        service.stop()
    assert answer.startswith("HOLD"), (answer, service.log)
    store = Store(postgres.url, writer=False)
    try:
        [held] = store.holds.in_state()
    finally:
        store.close()
    assert (held.sender, held.recipients) == (sender, ["bob@held.example"])
