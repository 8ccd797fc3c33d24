"""Listening sockets from the service manager (systemd's ``.socket`` units): every listener
serves the socket passed for its address, so a restart refuses no client; a passed socket
no listener takes stops the start. With systemd's own ``systemd-socket-activate``, and with
the tests' :class:`SocketUnit`, which keeps the sockets across processes as systemd does."""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import urllib.request

import pytest
from mta import TYPOGATE, Sink, policy_answer, read_policy_answer
from ports import free_port, wait_for_port
from socket_unit import SocketUnit

from typogate.gateway.activation import PassedSockets

REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=alice@example.org\n"
    b"recipient=john@army.ml\n\n"
)


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    return process.wait(timeout=15)


def _answer(client: socket.socket) -> str:
    client.settimeout(60)  # the process behind the socket may still be starting
    return read_policy_answer(client).decode()


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="setup.d installs it")
def test_systemd_starts_the_policy_service_on_its_socket_at_the_first_connection(tmp_path):
    port = free_port()
    log = open(tmp_path / "policy.log", "wb")  # noqa: SIM115
    # It listens, and at the first connection execs typogate with the socket as fd 3.
    process = subprocess.Popen(
        [
            "systemd-socket-activate",
            "--listen",
            f"127.0.0.1:{port}",
            TYPOGATE,
            "policy",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        wait_for_port(port)  # the activator listens; this connection starts typogate
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(REQUEST)  # waits in the socket while typogate starts
            answer = _answer(client)
        assert answer.startswith("action=550 5.1.2 ") and "army.mil" in answer
        # And the next client, on the same socket, in the same process.
        assert "army.mil" in policy_answer(port, "john@army.ml")
    finally:
        assert _stop(process) == 0
        log.close()
    said = (tmp_path / "policy.log").read_text()
    assert f"serving the socket systemd passed for 127.0.0.1:{port}" in said


def test_a_restart_on_a_socket_unit_answers_the_request_sent_while_none_ran(tmp_path):
    port = free_port()
    unit = SocketUnit([port])
    command = [TYPOGATE, "policy", "--listen", f"127.0.0.1:{port}"]
    log = tmp_path / "policy.log"
    try:
        first = unit.start(command, log)
        try:
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(REQUEST)
                assert "army.mil" in _answer(client)
        finally:
            assert _stop(first) == 0
        # No typogate runs now: a bound address alone would refuse this connection, and
        # Postfix would apply its default_action. The socket unit's queue keeps it.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(REQUEST)
            second = unit.start(command, log)
            try:
                answer = _answer(client)
            finally:
                assert _stop(second) == 0
    finally:
        unit.close()
    assert answer.startswith("action=550 5.1.2 ") and "army.mil" in answer, log.read_text()


def test_serve_takes_the_policy_and_web_sockets(tmp_path):
    policy_port, web_port = free_port(), free_port()
    (tmp_path / "typogate.toml").write_text(
        f'[gateway]\npolicy_listen = "127.0.0.1:{policy_port}"\n'
        f'[web]\nlisten = "127.0.0.1:{web_port}"\n'
    )
    unit = SocketUnit([policy_port, web_port])
    command = [TYPOGATE, "serve", "--no-milter", "--config", str(tmp_path / "typogate.toml")]
    command += ["--db", f"sqlite:///{tmp_path / 'typogate.db'}"]
    process = unit.start(command, tmp_path / "serve.log")
    try:
        with socket.create_connection(("127.0.0.1", policy_port)) as client:
            client.sendall(REQUEST)
            assert "army.mil" in _answer(client)
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/health", timeout=60) as page:
            assert page.status == 200
    finally:
        assert _stop(process) == 0
        unit.close()
    said = (tmp_path / "serve.log").read_text()
    assert f"the web interface: serving the socket systemd passed for 127.0.0.1:{web_port}" in said


@pytest.mark.parametrize("command", ["proxy", "sink"])
def test_the_smtp_listeners_take_their_socket(tmp_path, command):
    port = free_port()
    (tmp_path / "typogate.toml").write_text(
        '[domains]\nprotected = ["army.mil"]\n[sink]\nhostname = "sink.test.example"\n'
        '[[sink.serve]]\nsuffix = "ml"\n'
    )
    next_hop = Sink(free_port()).start()  # the proxy's, where the rest would be relayed
    args = {
        "proxy": ["proxy", "--next-hop", f"127.0.0.1:{next_hop.port}"],
        "sink": ["sink", "run", "--db", f"sqlite:///{tmp_path / 'sink.db'}"],
    }[command]
    args += ["--listen", f"127.0.0.1:{port}", "--config", str(tmp_path / "typogate.toml")]
    unit = SocketUnit([port])
    process = unit.start([TYPOGATE, *args], tmp_path / "smtp.log")
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo("client.example")
            assert client.mail("alice@example.org")[0] == 250
            code, text = client.rcpt("john@army.ml")
        assert code == 550 and b"army.mil" in text
    finally:
        assert _stop(process) == 0
        unit.close()
        next_hop.stop()


def test_a_passed_socket_no_listener_takes_stops_the_start(tmp_path):
    policy_port, stray_port = free_port(), free_port()
    unit = SocketUnit([policy_port, stray_port])
    process = unit.start(
        [TYPOGATE, "policy", "--listen", f"127.0.0.1:{policy_port}"], tmp_path / "policy.log"
    )
    try:
        # Nobody would accept on it: every client would wait for its own timeout.
        status = process.wait(timeout=60)
    finally:
        _stop(process)
        unit.close()
    said = " ".join((tmp_path / "policy.log").read_text().split())
    assert status == 1, said
    assert f"cannot run typogate on 127.0.0.1:{stray_port}: systemd passed a socket" in said


@pytest.mark.parametrize("broken", ["configuration", "store"])
def test_a_process_that_cannot_start_refuses_the_waiting_clients(tmp_path, broken):
    # systemd starts it again and again (Restart=on-failure); meanwhile a client waiting in
    # the socket would wait for its own timeout (Postfix: 100 s a try) where, with nothing
    # listening, it is refused at once and applies its default_action.
    port = free_port()
    config = tmp_path / "typogate.toml"
    config.write_text("[gateway\n" if broken == "configuration" else "")
    db = f"postgresql://typogate@127.0.0.1:{free_port()}/typogate"  # nothing listens there
    command = [TYPOGATE, "policy", "--listen", f"127.0.0.1:{port}", "--config", str(config)]
    if broken == "store":
        command += ["--db", db]
    unit = SocketUnit([port])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(REQUEST)  # waits in the socket
            process = unit.start(command, tmp_path / "policy.log")
            status = process.wait(timeout=60)
            client.settimeout(5)  # it left: the client has its answer by now
            try:
                said = client.recv(4096)
            except ConnectionResetError:
                said = b""
    finally:
        _stop(process)
        unit.close()
    assert status == (2 if broken == "configuration" else 1)
    assert said == b""  # closed, not answered: Postfix applies its default_action


def test_a_socket_is_taken_for_the_address_it_is_bound_to():
    # Bound only, never listening: nothing here answers anyone.
    with socket.socket() as loopback:
        loopback.bind(("127.0.0.1", 0))
        port = loopback.getsockname()[1]
        passed = PassedSockets([loopback])
        assert passed.take("0.0.0.0", port, "the test") is None  # not the same address
        assert passed.take("127.0.0.1", port + 1 if port < 65535 else port - 1, "the test") is None
        assert passed.take("localhost", port, "the test") is loopback  # a name: what it resolves to
        passed.refuse_the_rest()  # taken: nothing to refuse


def test_the_sinks_0_0_0_0_takes_the_socket_of_every_address():
    # The sink's unit says ListenStream=25, which systemd binds as [::]:25 (IPv4 too); the
    # sink is told 0.0.0.0:25.
    try:
        every = socket.socket(socket.AF_INET6)
    except OSError as error:
        pytest.skip(f"no IPv6 on this machine: {error}")
    with every:
        every.bind(("::", 0))  # never listen(): bound to every address, answering none
        port = every.getsockname()[1]
        passed = PassedSockets([every])
        assert passed.take("127.0.0.1", port, "the test") is None
        assert passed.take("0.0.0.0", port, "the test") is every
