"""Slow and greedy clients of the policy service: idle connections, clients that never read,
slow senders and floods never keep a real request from being answered before Postfix's own
policy timeout; memory, journal and log stay bounded under padded input."""

from __future__ import annotations

import contextlib
import random
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from memory import memory_mib
from mta import Postfix, Server, Sink, postfix_root, read_policy_answer, swaks
from ports import free_port

from typogate.store.log_file import read_journal

CONFIG = """
[domains]
protected = ["army.mil", "gmail.com"]
[gateway]
journal = "journal.jsonl"
[limits]
{limits}
"""


def start(tmp_path: Path, limits: str = "", open_files: int | None = None) -> Server:
    config = tmp_path / "typogate.toml"
    config.write_text(CONFIG.format(limits=limits))
    port = free_port()
    args = ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(config)]
    return Server(args, port, tmp_path / "policy.log", open_files=open_files).start()


def request(recipient: str, sender: str = "alice@example.org") -> bytes:
    return (
        "request=smtpd_access_policy\nprotocol_state=RCPT\n"
        f"sender={sender}\nrecipient={recipient}\n\n"
    ).encode()


def ask(port: int, recipient: str, timeout: float = 10.0) -> str:
    """One request on a new connection, as Postfix asks; the action. ``timeout``: how long
    Postfix would wait for it (smtpd_policy_service_timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(request(recipient))
        answer = read_policy_answer(client)
    return answer.decode().removeprefix("action=").strip()


def small_buffers(port: int) -> socket.socket:
    """A connection whose own kernel buffers are small, so that what it sends and never
    reads piles up in the server's buffers, not in its own."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.connect(("127.0.0.1", port))
    return client


def closed_by_server(client: socket.socket, within: float) -> bool:
    """Whether the server closes ``client`` within ``within`` seconds (reading what it
    sends meanwhile)."""
    client.settimeout(0.5)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if not client.recv(65536):
                return True
        except TimeoutError:
            continue
        except ConnectionError:
            return True
    return False


@pytest.mark.postfix
@pytest.mark.skipif(shutil.which("postfix") is None, reason="make test installs postfix")
def test_600_idle_connections_never_let_a_typo_pass(tmp_path):
    service = start(tmp_path)  # the default table: 512 connections
    sink = Sink(free_port()).start()
    postfix = Postfix(postfix_root(), free_port(), sink.port)
    postfix.settings["smtpd_recipient_restrictions"] = (
        f"check_policy_service {{ inet:127.0.0.1:{service.port}, default_action=DUNNO }}"
    )
    idle = []
    try:
        # Opened before Postfix's first request, so its connection is the newest.
        for _ in range(600):
            idle.append(socket.create_connection(("127.0.0.1", service.port), timeout=10))
        postfix.start()
        result = swaks(postfix.smtpd_port, "alice@example.org", ["john@army.ml"])
        # Answered within Postfix's policy timeout (10 s here): refused, not waved through.
        assert re.search(r"550 5\.1\.2 .*army\.mil", result.stdout), result.stdout
        assert "policy service" not in postfix.log  # no "problem talking to" warning
        assert ask(service.port, "jane@army.mil") == "DUNNO"
    finally:
        for client in idle:
            client.close()
        postfix.remove()
        sink.stop()
        service.stop()


def test_a_table_larger_than_the_open_file_limit_is_fitted_to_it(tmp_path):
    # Room for 400 open files and a table of 512: before the table filled, accept() failed,
    # and from then on no new connection was answered, Postfix's neither, however idle
    # the ones in the table were (making room is how a flood of them is outlasted).
    service = start(tmp_path, open_files=400)
    idle = []
    try:
        for _ in range(600):
            idle.append(socket.create_connection(("127.0.0.1", service.port), timeout=10))
        assert ask(service.port, "john@army.ml").startswith("550 5.1.2")
        assert "policy: the open-file limit (400) leaves room for 136 sessions" in service.log
        assert "LimitNOFILE=" in service.log
    finally:
        for client in idle:
            client.close()
        service.stop()


def test_clients_that_never_read_lose_their_place(tmp_path):
    service = start(tmp_path, "policy_connections = 8\npolicy_write_seconds = 2")
    greedy = [small_buffers(service.port) for _ in range(8)]
    stuck = threading.Barrier(len(greedy) + 1, timeout=120)
    closed: list[socket.socket] = []

    def never_read(client: socket.socket) -> None:
        # Requests without end, answers never read. Once the server's answers fill every
        # buffer, it stops reading, and sending blocks: the client is stuck, and so is its
        # place in the table, until the server closes it (seen here as a failed send).
        client.settimeout(1.0)
        burst = request("john@army.ml") * 2000
        reached = False
        deadline = time.monotonic() + 90
        try:
            while time.monotonic() < deadline:
                try:
                    client.sendall(burst)
                except TimeoutError:  # blocked: the server stopped reading
                    if not reached:
                        reached = True
                        stuck.wait()
                except OSError:
                    closed.append(client)
                    return
        finally:
            if not reached:  # closed before it was seen stuck: it still counts
                with contextlib.suppress(threading.BrokenBarrierError):
                    stuck.wait()

    threads = [threading.Thread(target=never_read, args=(c,), daemon=True) for c in greedy]
    try:
        for thread in threads:
            thread.start()
        stuck.wait()  # every greedy client is stuck: the table is full of them
        for _ in range(3):  # a real request is answered, in its own connection, each time
            assert ask(service.port, "john@army.ml").startswith("550 ")
        # Each greedy connection is closed: evicted, or when its answers were not taken
        # within policy_write_seconds.
        for thread in threads:
            thread.join(timeout=100)
        assert len(closed) == len(greedy)
        assert "too slow to take its answers" in service.log
    finally:
        for client in greedy:
            client.close()
        service.stop()


def test_a_client_that_never_reads_makes_the_server_hold_little(tmp_path):
    # The kernel grows a connection's buffers to megabytes when a client sends without
    # reading; the service keeps them small, so each such client costs it well under a
    # megabyte of requests taken in and answers waiting, and little work to produce them.
    service = start(tmp_path, "policy_write_seconds = 30")
    client = small_buffers(service.port)
    client.settimeout(2.0)
    one = request("john@army.ml")
    taken = 0
    try:
        while taken < 100_000:
            try:
                client.sendall(one)
            except TimeoutError:  # blocked: the server stopped reading
                break
            taken += 1
        assert taken < 100_000, "the server never stopped taking requests"
        assert taken * len(one) < 1_000_000, f"{taken:,} requests taken in"
    finally:
        client.close()
        service.stop()


def test_a_slow_sender_and_an_idle_client_are_cut_off(tmp_path):
    service = start(tmp_path, "policy_read_seconds = 2\npolicy_idle_seconds = 3")
    try:
        slow = socket.create_connection(("127.0.0.1", service.port), timeout=10)
        idle = socket.create_connection(("127.0.0.1", service.port), timeout=10)
        started = time.monotonic()
        slow.sendall(b"request=smtpd_access_policy\n")
        closed = False
        for byte in b"protocol_state=RCPT\nrecipient=john@army.ml\n":
            try:
                slow.sendall(bytes([byte]))  # one byte a second: never a whole request
            except ConnectionError:
                closed = True
                break
            time.sleep(1)
        assert closed or closed_by_server(slow, within=10)
        assert time.monotonic() - started < 60  # not the old 300 s
        assert closed_by_server(idle, within=20)
        assert ask(service.port, "john@army.ml").startswith("550 ")  # others served meanwhile
    finally:
        service.stop()


def test_padded_requests_keep_memory_journal_and_log_bounded(tmp_path):
    limits = "journal_max_bytes = 1_000_000\njournal_keep = 2\nlog_lines_per_minute = 20"
    service = start(tmp_path, limits)
    try:
        rng = random.Random(15)
        blanks = bytes.maketrans(bytes(range(256)), b" \t" * 128)
        with socket.create_connection(("127.0.0.1", service.port), timeout=30) as client:

            def answer(recipient: bytes) -> bytes:
                client.sendall(
                    b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
                    b"sender=alice@example.org\nrecipient=" + recipient + b"\n\n"
                )
                return read_policy_answer(client)

            answer(b"x@army.ml")
            before = memory_mib(service.process.pid)
            for n in range(7_000):
                padding = rng.randbytes(rng.randint(2000, 4000)).translate(blanks)
                # Padding after the domain (judged: 6,000 spellings of army.ml) and, one time
                # in seven, inside the local part (unreadable: a log line each).
                recipient = b"x" + padding + b"@army.ml" if n % 7 == 0 else b"x@army.ml" + padding
                assert answer(recipient).startswith(b"action=")
            grown = memory_mib(service.process.pid) - before
        # The old cache, keyed on the raw text, grew by ~4 MB per 1,000 such requests.
        assert grown < 10, f"the policy service grew by {grown:.0f} MB"
        time.sleep(1.5)  # the journal's writer flushes twice a second
        files = list(tmp_path.glob("journal.jsonl*"))
        # Each file is at most journal_max_bytes and one write (a sixteenth of it) more.
        assert sum(f.stat().st_size for f in files) <= 3 * (1_000_000 + 1_000_000 // 16 + 4096)
        names = {f.name for f in files}  # the journal (unless just rotated) and two old ones
        assert (
            {"journal.jsonl.1", "journal.jsonl.2"}
            <= names
            <= {
                "journal.jsonl",
                "journal.jsonl.1",
                "journal.jsonl.2",
            }
        )
        assert any(r["kind"] == "verdict" for r in read_journal(tmp_path / "journal.jsonl"))
        assert len(service.log) < 100_000  # 1,000 unreadable recipients, 20 lines a kind
    finally:
        service.stop()
