"""kill -9 of `typogate serve` in a burst of verdicts: every hold it acknowledged survives."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from mta import TYPOGATE, read_policy_answer
from ports import free_port, wait_for_port

from typogate.store import Store


def test_kill_9_loses_no_acknowledged_hold(tmp_path: Path):
    policy, milter, web = free_port(), free_port(), free_port()
    (tmp_path / "typogate.toml").write_text(
        f"""
[domains]
protected = ["army.mil", "navy.mil"]
[actions]
typo = "hold"
[gateway]
policy_listen = "127.0.0.1:{policy}"
milter_listen = "inet:{milter}@127.0.0.1"
[web]
listen = "127.0.0.1:{web}"
"""
    )
    db = f"sqlite:///{tmp_path / 'typogate.db'}"
    command = [TYPOGATE, "serve", "--config", "typogate.toml", "--db", db]
    server = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(policy, timeout=60)
    acknowledged: list[str] = []
    lock = threading.Lock()

    def burst(worker: int) -> None:
        try:
            with socket.create_connection(("127.0.0.1", policy), timeout=10) as client:
                for i in range(100_000):
                    recipient = f"w{worker}-{i}@army.ml"
                    client.sendall(
                        b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
                        b"sender=a@example.org\nrecipient=" + recipient.encode() + b"\n\n"
                    )
                    answer = read_policy_answer(client)  # ConnectionError: it died
                    if answer.startswith(b"action=HOLD"):
                        with lock:
                            acknowledged.append(recipient)
        except OSError:
            return  # the server died mid-request: that hold was never acknowledged

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    for thread in threads:
        thread.join()
    assert len(acknowledged) > 50  # the burst was real
    # After the crash (and a restart of the store), every acknowledged hold is listed.
    store = Store(db)
    held = {h.recipients[0] for h in store.holds.in_state()}
    store.close()
    missing = [r for r in acknowledged if r not in held]
    assert missing == []
    restarted = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(policy, timeout=60)
    finally:
        os.kill(restarted.pid, signal.SIGTERM)
        assert restarted.wait(timeout=20) == 0
