"""The web interface under a flood of connections, in ``typogate serve``: its port may be
open to senders (their release links), and it shares the process with the policy service.

Unbounded, idle connections to the web port used up the process's open files: the policy
service could no longer accept Postfix's connections, and Postfix, after its timeout,
applied its ``default_action`` (fail-open: the typo leaves). Now the web interface takes at
most ``web_connections`` at once and closes one that sends no request within
``web_request_seconds``.
"""

from __future__ import annotations

import re
import resource
import socket
import time
from pathlib import Path

from memory import memory_mib
from mta import Server, policy_answer
from ports import free_port, wait_until

CONFIG = """
[domains]
protected = ["army.mil"]
[gateway]
policy_listen = "127.0.0.1:{policy}"
milter_listen = "inet:{milter}@127.0.0.1"
[web]
listen = "127.0.0.1:{web}"
[limits]
{limits}
"""


def start_serve(
    folder: Path, limits: str = "", open_files: int | None = None, milter: bool = False
):
    ports = {"policy": free_port(), "web": free_port(), "milter": free_port()}
    (folder / "typogate.toml").write_text(CONFIG.format(**ports, limits=limits))
    args = ["serve", "--milter" if milter else "--no-milter"]
    args += [
        "--config",
        str(folder / "typogate.toml"),
        "--db",
        f"sqlite:///{folder / 'typogate.db'}",
    ]
    server = Server(args, ports["web"], folder / "serve.log", open_files=open_files).start()
    return server, ports


def get(port: int, path: str = "/health") -> str:
    """The status line of one plain HTTP request to 127.0.0.1:``port``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        return sock.makefile("rb").readline().decode().strip()


def answered_under_flood(tmp_path: Path, floods: dict[str, int], **serve) -> str:
    """The log of a ``serve`` whose policy service answered at once while ``floods`` idle
    connections ({"milter": L, "web": N, "policy": M}, in that order) held its ports."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    server, ports = start_serve(tmp_path, **serve)
    policy = ports["policy"]
    flood: list[socket.socket] = []
    try:
        for part, count in floods.items():
            for _ in range(count):
                try:
                    flood.append(socket.create_connection(("127.0.0.1", ports[part]), timeout=2))
                except OSError:  # refused or unanswered: the port is full, as it may be
                    break
        time.sleep(1)
        started = time.monotonic()
        answer = policy_answer(policy, "john@army.ml")
        assert answer.startswith("action=550 5.1.2 "), answer
        assert time.monotonic() - started < 5
    finally:
        for sock in flood:
            sock.close()
        server.stop()
    assert "Too many open files" not in server.log
    return server.log


def test_a_flood_on_the_web_port_leaves_the_policy_service_answering(tmp_path):
    answered_under_flood(tmp_path, {"web": 700}, open_files=512)


def test_floods_on_both_ports_share_the_open_file_limit(tmp_path):
    # Room for 600 files, 512 policy connections and 512 web ones asked for: each listener
    # fitted its sessions to the limit alone, 336 each, together more than the process
    # could open. Under a flood of both, accept() failed and Postfix's next connection
    # waited unanswered. Now each gets its share of the room, and the room is what is left
    # once both listeners can refuse a burst.
    log = answered_under_flood(
        tmp_path, {"web": 500, "policy": 500}, limits="web_connections = 512", open_files=600
    )
    fitted = [
        int(room)
        for part in ("policy", "web")
        for room in re.findall(
            rf"{part}: the open-file limit \(600\) leaves room for (\d+) sessions", log
        )
    ]
    # What is left of 600 after 64 for the rest of the process and, for each listener,
    # twice its listen backlog (connections accepted at once, refused or evicted later).
    assert len(fitted) == 2 and sum(fitted) <= 600 - 64 - 2 * 200, log


def test_the_milters_connections_from_postfix_are_counted_beside_both_ports(tmp_path):
    # libmilter takes every connection Postfix opens (one from each smtpd and cleanup
    # process), a descriptor each, with no bound of its own. The policy service and the
    # web interface fitted their sessions to the limit as if the milter held none: with
    # Postfix's connections to the milter open, a flood of both ports ran the process
    # out of open files.
    log = answered_under_flood(
        tmp_path,
        {"milter": 200, "web": 500, "policy": 600},
        open_files=800,
        milter=True,
    )
    fitted = re.findall(r"the open-file limit \(800\) leaves room for (\d+) sessions", log)
    # Room is left whole for 200 milter connections (libmilter refuses no burst).
    assert len(fitted) == 2 and sum(map(int, fitted)) <= 800 - 64 - 2 * 200 - 200, log


def test_a_connection_that_sends_no_request_is_closed_and_others_are_served(tmp_path):
    server, ports = start_serve(tmp_path, limits="web_request_seconds = 1\nweb_connections = 3")
    web = ports["web"]
    try:
        # The start's probe has gone.
        assert wait_until(lambda: get(web).startswith("HTTP/1.1 200"), within=10)
        silent = [socket.create_connection(("127.0.0.1", web), timeout=10) for _ in range(3)]
        # All three places are taken: one more is told 503 at once.
        assert get(web) == "HTTP/1.1 503 Service Unavailable"
        # The silent ones are closed after a second, and their places are free again.
        for sock in silent:
            assert sock.recv(100) == b""
            sock.close()
        assert get(web).startswith("HTTP/1.1 200")
    finally:
        server.stop()
    assert "web: 3 connections open, refusing another" in server.log


def answer_and_close(sock: socket.socket) -> str:
    """The status line of the answer on ``sock``, once the server has closed the
    connection (within web_request_seconds, or uvicorn's keep-alive of 5 s).

    A server that closes with some of the body still unread resets the connection: the
    answer read before the reset is the answer (on a loaded machine the server drains the
    body more slowly than the client sends it, and the close comes while it still flows)."""
    sock.settimeout(10)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        if not answer:
            raise
    return answer.split(b"\r\n")[0].decode()


def post(port: int, path: str, body_bytes: int, *, chunked: bool = False) -> str:
    """POST ``body_bytes`` to ``path`` (JSON to the API, a form elsewhere), as fast as the
    server takes it; the status line of the answer."""
    kind = "application/json" if path.startswith("/api/") else "application/x-www-form-urlencoded"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {body_bytes}"
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\n"
            f"{length}\r\n\r\n".encode()
        )
        block = b'{"username": "' + b"a" * (1024 * 1024 - 14)
        try:
            for _ in range(body_bytes // len(block)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                block = b"a" * len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest
        return answer_and_close(sock)


def test_a_body_past_the_bound_is_refused_before_it_fills_the_gateways_memory(tmp_path):
    """Before: the web interface read any body whole, with no account needed: one sign-in
    attempt of 400 MB took the process, the policy service's too under serve, from 99 MB
    to 2.1 GB at its peak (and the 422 repeated the body back). Now a body past
    web_body_bytes is answered 413, declared or chunked, and what was read stays small.
    The connection is closed soon after: the rest of the body disarmed uvicorn's keep-alive
    timer, and such a connection stayed open for good, one of web_connections each."""
    server, ports = start_serve(tmp_path, limits="web_request_seconds = 2")
    web = ports["web"]
    try:
        assert wait_until(lambda: get(web).startswith("HTTP/1.1 200"), within=10)
        before = memory_mib(server.process.pid, "VmHWM")
        for path, chunked in [("/api/session", False), ("/api/session", True), ("/login", False)]:
            answer = post(web, path, 200 * 1024 * 1024, chunked=chunked)
            # The code, not its phrase: Python 3.13 says "Content Too Large" (RFC 9110).
            assert answer.startswith("HTTP/1.1 413 "), (path, chunked, answer)
        grown = memory_mib(server.process.pid, "VmHWM") - before
        assert grown < 50, f"the peak grew by {grown:.0f} MiB"
        assert "action=" in policy_answer(ports["policy"], "john@army.ml")
    finally:
        server.stop()


def test_a_body_that_trickles_in_is_cut_off(tmp_path):
    """Before: a request that declared a body and sent it a byte at a time (or never) kept
    its connection, one of web_connections, for as long as the client liked. Now the body
    must be complete within web_request_seconds: 408, and the connection is closed."""
    server, ports = start_serve(tmp_path, limits="web_request_seconds = 1")
    web = ports["web"]
    try:
        assert wait_until(lambda: get(web).startswith("HTTP/1.1 200"), within=10)
        with socket.create_connection(("127.0.0.1", web), timeout=10) as sock:
            sock.sendall(
                b"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                b'{"username'
            )
            started = time.monotonic()
            answer = answer_and_close(sock)
            assert answer == "HTTP/1.1 408 Request Timeout", answer
            assert time.monotonic() - started < 5
    finally:
        server.stop()


def test_a_body_sent_after_the_answer_does_not_keep_the_connection(tmp_path):
    """Before: uvicorn disarms its keep-alive timer on any data and arms it again only
    after an answer. A POST to a page that does not exist was answered 404 at once; the
    body it sent after kept the connection open for good (40 s and more in the test), no
    sign-in needed, past web_request_seconds: 128 of them and the web interface answered
    no one. Now a connection that starts no request within web_request_seconds of its
    last answer is closed."""
    server, ports = start_serve(tmp_path, limits="web_request_seconds = 2")
    web = ports["web"]
    try:
        assert wait_until(lambda: get(web).startswith("HTTP/1.1 200"), within=10)
        with socket.create_connection(("127.0.0.1", web), timeout=10) as sock:
            sock.sendall(
                b"POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
            )
            time.sleep(0.5)  # answered already
            sock.sendall(b"a" * 100_000)
            assert answer_and_close(sock) == "HTTP/1.1 404 Not Found"
    finally:
        server.stop()
