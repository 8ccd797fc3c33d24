"""`typogate serve`: the main job runs the policy service, the milter and the web together."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess

import pytest
from mta import TYPOGATE, policy_answer, run_typogate
from ports import free_port, port_in_use, wait_for_port


# "process": SIGTERM to typogate alone. "group": to every process it started as well, as
# Ctrl-C in a terminal and systemd's default KillMode=control-group do.
@pytest.mark.parametrize("stop", ["process", "group"])
def test_serve_answers_policy_requests_and_listens_for_milters(tmp_path, stop):
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
        [TYPOGATE, "serve", "--config", "typogate.toml"],
        cwd=tmp_path,
        stdout=log,
        stderr=log,
        start_new_session=True,  # its own process group, which the test may signal whole
    )
    try:
        wait_for_port(policy_port, timeout=60)
        wait_for_port(milter_port, timeout=30)
        wait_for_port(web_port, timeout=30)
        answer = policy_answer(policy_port, "john@army.ml")
        assert answer.startswith("action=550 5.1.2 ") and "army.mil" in answer
        # Clients that stay connected through the stop, as Postfix keeps its policy
        # connections open while idle, and a browser its HTTP connection. On Python 3.12+,
        # before, each listener waited for them until the 10 s of its thread's join ran out.
        idle = [socket.create_connection(("127.0.0.1", port)) for port in (policy_port, web_port)]
    finally:
        if stop == "group":
            os.killpg(process.pid, signal.SIGTERM)
        else:
            os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=8) == 0
        log.close()
    for client in idle:
        client.close()
    with sqlite3.connect(tmp_path / "typogate.db") as db:  # the embedded default store
        rows = db.execute("SELECT recipient, action, suggestion FROM events").fetchall()
    assert rows == [("john@army.ml", "reject", "army.mil")]
    # The operator is told once where each part listens and with what.
    said = (tmp_path / "serve.log").read_text()
    assert said.count(f"policy service on 127.0.0.1:{policy_port} (enforce mode, ") == 1
    # ... and, last, that it stopped (before, uvicorn's own "Finished server process").
    assert said.splitlines()[-1].split(": ", 1)[1].startswith("stopped in "), said
    # ... and not about a library's own set-up (Alembic 1.17+ logs each plugin it loads),
    # nor each step of the migrations that made the store, nor uvicorn's own life.
    assert "setup plugin" not in said
    assert said.count("store: made a new, empty store at ") == 1
    assert " alembic." not in said and " uvicorn." not in said, said


@pytest.mark.parametrize("busy", ["policy", "milter", "web"])
def test_an_address_in_use_stops_serve_with_a_clear_error(tmp_path, busy):
    ports = {"policy": free_port(), "milter": free_port(), "web": free_port()}
    with port_in_use() as taken:
        ports[busy] = taken
        (tmp_path / "typogate.toml").write_text(
            f"""
[gateway]
policy_listen = "127.0.0.1:{ports["policy"]}"
milter_listen = "inet:{ports["milter"]}@127.0.0.1"
[web]
listen = "127.0.0.1:{ports["web"]}"
"""
        )
        # It used to wait for ever when the policy port was taken.
        status, said = run_typogate("serve", "--config", "typogate.toml", cwd=tmp_path)
    assert status == 1
    what = {"policy": "the policy service", "milter": "the milter", "web": "the web interface"}
    assert f"cannot run {what[busy]} on" in said
    assert str(taken) in said


def test_serve_without_pymilter_says_so_and_runs_with_no_milter(tmp_path):
    # An install without the milter extra: the package cannot be imported.
    missing = tmp_path / "no-pymilter"
    missing.mkdir()
    (missing / "Milter.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'Milter'\", name='Milter')\n"
    )
    policy_port, web_port = free_port(), free_port()
    (tmp_path / "typogate.toml").write_text(
        f"""
[gateway]
policy_listen = "127.0.0.1:{policy_port}"
[web]
listen = "127.0.0.1:{web_port}"
"""
    )
    env = {**os.environ, "PYTHONPATH": str(missing)}
    done = subprocess.run(
        [TYPOGATE, "serve", "--config", "typogate.toml", "--no-web"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = " ".join(done.stderr.split())
    assert done.returncode == 1
    assert "cannot run the milter: Milter is not installed" in said
    assert "Traceback" not in said
    process = subprocess.Popen(
        [TYPOGATE, "serve", "--config", "typogate.toml", "--no-web", "--no-milter"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(policy_port, timeout=60)
        assert policy_answer(policy_port, "john@army.ml").startswith("action=550 5.1.2 ")
    finally:
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=20) == 0
