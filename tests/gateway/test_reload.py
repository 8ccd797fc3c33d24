"""SIGHUP reloads the configuration without dropping a connection, under `typogate policy`
and under `typogate serve` (where libmilter's own signal thread would stop the milter on a
SIGHUP); SIGTERM stops serve at once; the serve flags."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from mta import TYPOGATE, Server, read_policy_answer
from ports import free_port, wait_for_port

OLD = '[domains]\nprotected = ["army.mil"]\n'
NEW = '[domains]\nprotected = ["army.mil", "example.org"]\n[model]\nreject_at = 0.8\n'


class PolicyClient:
    """One connection to the policy service, kept open, asked as Postfix asks."""

    def __init__(self, port: int) -> None:
        self.connection = socket.create_connection(("127.0.0.1", port), timeout=10)

    def ask(self, recipient: str) -> str:
        self.connection.sendall(
            b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
            + f"sender=a@sender.example\nrecipient={recipient}\n\n".encode()
        )
        return read_policy_answer(self.connection).decode()

    def close(self) -> None:
        self.connection.close()


def _wait_for(server: Server, text: str, count: int = 1, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while server.log.count(text) < count:
        assert time.monotonic() < deadline, server.log
        assert server.process is not None and server.process.poll() is None, server.log
        time.sleep(0.1)


def _start(command: str, tmp_path: Path) -> tuple[Server, dict[str, int]]:
    ports = {"policy": free_port(), "milter": free_port(), "web": free_port()}
    args = ["--config", str(tmp_path / "typogate.toml")]
    if command == "policy":
        args += ["--listen", f"127.0.0.1:{ports['policy']}"]
    else:  # the whole job, the milter with its libmilter signal thread included
        args += [
            "--db",
            f"sqlite:///{tmp_path / 'typogate.db'}",
            "--no-web",
            "--policy-listen",
            f"127.0.0.1:{ports['policy']}",
            "--milter-listen",
            f"inet:{ports['milter']}@127.0.0.1",
        ]
    return Server([command, *args], ports["policy"], tmp_path / f"{command}.log").start(), ports


@pytest.mark.parametrize("command", ["policy", "serve"])
def test_sighup_applies_new_lists_on_an_open_connection(tmp_path, command):
    config = tmp_path / "typogate.toml"
    config.write_text(OLD)
    # The SIGHUP comes as soon as the policy service answers: under serve, while the
    # milter may still be starting (libmilter's signal thread must not take it then).
    server, ports = _start(command, tmp_path)
    client = PolicyClient(ports["policy"])
    try:
        assert client.ask("bob@exampel.org") == "action=DUNNO\n\n"
        config.write_text(NEW)
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGHUP)
        _wait_for(server, "reload: ")
        answer = client.ask("bob@exampel.org")  # the same connection
        assert answer.startswith("action=550 5.1.2 ") and "example.org" in answer
        assert "reject_at" not in server.log  # thresholds reload: nothing to restart for
        if command == "serve":  # the milter is still there after the SIGHUP
            socket.create_connection(("127.0.0.1", ports["milter"]), timeout=5).close()
    finally:
        client.close()
        server.stop()
    assert server.process.returncode == 0, server.log


def test_a_bad_configuration_is_logged_and_the_one_in_use_kept(tmp_path):
    config = tmp_path / "typogate.toml"
    config.write_text(NEW)
    server, ports = _start("serve", tmp_path)
    client = PolicyClient(ports["policy"])
    try:
        config.write_text(NEW + "[model]\nreject_at = 2\n")  # twice a section, and > 1
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGHUP)
        _wait_for(server, "reload: the configuration cannot be used, keeping the one in use")
        answer = client.ask("bob@exampel.org")
        assert answer.startswith("action=550 5.1.2 ")
        # Reload after reload: each SIGHUP is the main thread's; libmilter's signal thread
        # (which would stop the milter on one) does not see them. Not a burst within
        # milliseconds: on a loaded machine one of those can reach libmilter's thread while
        # the main thread has the last one waiting (docs/operations.md, "Reloading").
        config.write_text(OLD.replace("army.mil", "navy.mil") + "[gateway]\njournal = 'j'\n")
        for n in range(2, 12):
            os.kill(server.process.pid, signal.SIGHUP)
            _wait_for(server, "SIGHUP: reloading the configuration", count=n)
        _wait_for(server, "protected and known domains")  # a reload that took
        _wait_for(server, "change at the next restart")
        assert "gateway.journal change at the next restart" in server.log
        assert client.ask("bob@exampel.org") == "action=DUNNO\n\n"
        assert client.ask("sam@navy.ml").startswith("action=550 5.1.2 ")
        socket.create_connection(("127.0.0.1", ports["milter"]), timeout=5).close()
    finally:
        client.close()
        server.stop()
    assert server.process.returncode == 0, server.log


def test_serve_stops_at_once_and_no_web_makes_no_account(tmp_path):
    """SIGTERM: serve used to wait for libmilter's listener, which looks at its stop flag
    every 5 s (MI_CHK_TIME); now the stop wakes it. The bound is well under that tick."""
    (tmp_path / "typogate.toml").write_text(OLD)
    policy_port, milter_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            TYPOGATE,
            "serve",
            "--config",
            "typogate.toml",
            "--no-web",
            "--policy-listen",
            f"127.0.0.1:{policy_port}",
            "--milter-listen",
            f"inet:{milter_port}@127.0.0.1",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(policy_port, timeout=60)
        wait_for_port(milter_port, timeout=30)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            said, _ = process.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            said, _ = process.communicate()
            pytest.fail(f"serve took more than 3 s to stop: {said.decode()}")
    assert process.returncode == 0, said.decode()
    assert b"password" not in said  # --no-web: no admin account made or shown
    with sqlite3.connect(tmp_path / "typogate.db") as db:
        assert db.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
