"""The SMTP proxy under careless and hostile clients: clients that drop mid-DATA take their
next-hop sessions with them, connections are bounded with a clear 421, and a message over
the size limit gets 552 and is never relayed."""

from __future__ import annotations

import socket

from mta import Server, Sink
from ports import free_port, sessions_at, wait_until

CONFIG = """
[domains]
protected = ["army.mil", "example.org"]
[gateway]
journal = "journal.jsonl"
[limits]
{limits}
"""


def start_proxy(tmp, next_hop_port: int, limits: str) -> Server:
    config = tmp / "typogate.toml"
    config.write_text(CONFIG.format(limits=limits))
    port = free_port()
    args = ["proxy", "--listen", f"127.0.0.1:{port}", "--next-hop", f"127.0.0.1:{next_hop_port}"]
    return Server([*args, "--config", str(config)], port, tmp / "proxy.log").start()


class Smtp:
    """A bare SMTP client, to stop wherever a careless client stops."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.file.readline().decode()
            if not line:
                raise ConnectionError("closed: " + "".join(lines))
            lines.append(line)
            if line[3:4] != "-":
                return "".join(lines)

    def say(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_clients_dropping_mid_data_close_their_next_hop_sessions(tmp_path):
    sink = Sink(free_port()).start()
    proxy = start_proxy(tmp_path, sink.port, "proxy_connections = 200")
    clients = []
    try:
        for n in range(100):
            client = Smtp(proxy.port)
            assert client.reply().startswith("220")
            client.say("EHLO careless.example")
            assert client.say("MAIL FROM:<alice@example.org>").startswith("250")
            assert client.say(f"RCPT TO:<r{n}@army.mil>").startswith("250")
            assert client.say("DATA").startswith("354")
            client.sock.sendall(b"Subject: half a message\r\n\r\nthe first lines, and then\r\n")
            clients.append(client)
        assert sessions_at(sink.port) == 100  # each client has its relay session
        for client in clients:
            client.close()  # gone mid-DATA, no QUIT
        assert wait_until(lambda: sessions_at(sink.port) == 0, within=30), sessions_at(sink.port)
        assert sink.messages == []  # nothing half-sent was relayed
    finally:
        proxy.stop()
        sink.stop()


def test_connections_are_bounded_with_a_clear_421(tmp_path):
    sink = Sink(free_port()).start()
    proxy = start_proxy(tmp_path, sink.port, "proxy_connections = 5")
    try:
        assert wait_until(lambda: sessions_at(proxy.port) == 0, within=10)  # start's probe
        open_sessions = [Smtp(proxy.port) for _ in range(5)]
        for client in open_sessions:
            assert client.reply().startswith("220")
        extra = Smtp(proxy.port)
        refused = extra.reply()
        assert refused.startswith("421 4.3.2 ") and "too many connections" in refused
        extra.close()
        assert open_sessions[0].say("QUIT").startswith("221")
        open_sessions[0].close()
        # A place is free again: the next client is served.
        assert wait_until(lambda: Smtp(proxy.port).reply().startswith("220"), within=10)
        for client in open_sessions[1:]:
            client.close()
        assert "refusing another" in proxy.log
    finally:
        proxy.stop()
        sink.stop()


def test_a_message_over_the_size_limit_gets_552_and_is_not_relayed(tmp_path):
    sink = Sink(free_port()).start()
    proxy = start_proxy(tmp_path, sink.port, "proxy_message_bytes = 100_000")
    try:
        client = Smtp(proxy.port)
        client.reply()
        assert "SIZE 100000" in client.say("EHLO big.example")
        assert client.say("MAIL FROM:<alice@example.org> SIZE=500000").startswith("552")
        assert client.say("MAIL FROM:<alice@example.org>").startswith("250")
        assert client.say("RCPT TO:<jane@army.mil>").startswith("250")
        assert client.say("DATA").startswith("354")
        line = b"x" * 998 + b"\r\n"
        client.sock.sendall(b"Subject: too big\r\n\r\n" + line * 300)  # 300 kB
        assert client.say(".").startswith("552")
        # The session goes on: a message within the limit is relayed.
        assert client.say("RSET").startswith("250")
        assert client.say("MAIL FROM:<alice@example.org>").startswith("250")
        assert client.say("RCPT TO:<jane@army.mil>").startswith("250")
        assert client.say("DATA").startswith("354")
        client.sock.sendall(b"Subject: small\r\n\r\nwithin the limit\r\n")
        assert client.say(".").startswith("250")
        client.say("QUIT")
        client.close()
        sink.wait_for(lambda m: b"within the limit" in m.data)
        assert not any(b"too big" in m.data for m in sink.messages)
    finally:
        proxy.stop()
        sink.stop()
