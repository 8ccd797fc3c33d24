"""The SMTP proxy between swaks (or Postfix as smarthost client) and a recording sink."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from mta import Postfix, Server, Sink, postfix_root, swaks
from ports import free_port

CONFIG = """
[domains]
protected = ["army.mil", "example.org"]

[[rules]]
domain = "warn.example"
action = "warn"

[gateway]
journal = "journal.jsonl"
"""


def start_proxy(tmp, next_hop_port: int) -> Server:
    config = tmp / "typogate.toml"
    config.write_text(CONFIG)
    port = free_port()
    return Server(
        [
            "proxy",
            "--listen",
            f"127.0.0.1:{port}",
            "--next-hop",
            f"127.0.0.1:{next_hop_port}",
            "--config",
            str(config),
        ],
        port,
        tmp / "proxy.log",
    ).start()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxy")
    sink = Sink(free_port()).start()
    proxy = start_proxy(tmp, sink.port)
    yield proxy, sink
    proxy.stop()
    sink.stop()


def test_typo_refused_at_rcpt_and_the_rest_relayed(proxied):
    proxy, sink = proxied
    result = swaks(proxy.port, "alice@example.org", ["john@army.ml", "jane@army.mil"], "via proxy")
    assert re.search(r"<\*\* +550 5\.1\.2 .*did you mean army\.mil\?", result.stdout)
    assert re.search(r"<-  250 .*", result.stdout.split("DATA")[-1])
    delivered = sink.wait_for(lambda m: b"via proxy" in m.data)
    assert delivered.recipients == ["jane@army.mil"]


def test_warn_adds_a_header_on_the_way(proxied):
    proxy, sink = proxied
    swaks(proxy.port, "alice@example.org", ["bob@warn.example"], "warned")
    delivered = sink.wait_for(lambda m: b"warned" in m.data)
    assert "blocked.domain" in delivered.headers["X-Typogate"]


def test_next_hop_down_means_a_temporary_failure_not_a_lost_message(tmp_path):
    dead = free_port()
    proxy = start_proxy(tmp_path, dead)
    try:
        result = swaks(proxy.port, "alice@example.org", ["jane@army.mil"])
        assert re.search(r"<\*\* +451 4\.4\.1 ", result.stdout), result.stdout
        assert "250 OK" not in result.stdout.split("MAIL FROM")[-1]
    finally:
        proxy.stop()


@pytest.mark.postfix
@pytest.mark.skipif(shutil.which("postfix") is None, reason="make test installs postfix")
def test_postfix_as_smarthost_client_bounces_the_typo_recipient(tmp_path):
    sink = Sink(free_port()).start()
    proxy = start_proxy(tmp_path, sink.port)
    postfix = Postfix(postfix_root(), free_port(), proxy.port)  # relayhost = the proxy
    try:
        postfix.start()
        result = swaks(postfix.smtpd_port, "alice@example.org", ["john@army.ml", "jane@army.mil"])
        assert "250 2.0.0 Ok: queued" in result.stdout
        sink.wait_for(lambda m: m.recipients == ["jane@army.mil"])
        bounce = sink.wait_for(lambda m: m.recipients == ["alice@example.org"])
        assert b"did you mean army.mil?" in bounce.data
        time.sleep(0.5)
        assert sink.to("john@army.ml") == []
    finally:
        postfix.remove()
        proxy.stop()
        sink.stop()
