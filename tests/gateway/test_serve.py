"""`typogate serve`: the main job runs the policy service, the milter and the web together."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess

from mta import TYPOGATE
from ports import free_port, wait_for_port


def test_serve_answers_policy_requests_and_listens_for_milters(tmp_path):
    policy_port, milter_port, web_port = free_port(), free_port(), free_port()
    (tmp_path / "typogate.toml").write_text(
        f"""
[gateway]
policy_listen = "127.0.0.1:{policy_port}"
milter_listen = "inet:{milter_port}@127.0.0.1"
[web]
listen = "127.0.0.1:{web_port}"
"""
    )
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [TYPOGATE, "serve", "--config", "typogate.toml"], cwd=tmp_path, stdout=log, stderr=log
    )
    try:
        wait_for_port(policy_port, timeout=60)
        wait_for_port(milter_port, timeout=30)
        wait_for_port(web_port, timeout=30)
        with socket.create_connection(("127.0.0.1", policy_port), timeout=10) as client:
            client.sendall(
                b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=john@army.ml\n\n"
            )
            answer = b""
            while not answer.endswith(b"\n\n"):
                answer += client.recv(4096)
        assert answer.startswith(b"action=550 5.1.2 ") and b"army.mil" in answer
    finally:
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        log.close()
    with sqlite3.connect(tmp_path / "typogate.db") as db:  # the embedded default store
        rows = db.execute("SELECT recipient, action, suggestion FROM events").fetchall()
    assert rows == [("john@army.ml", "reject", "army.mil")]
