"""The SMTP proxy between swaks (or Postfix as smarthost client) and a recording sink."""

from __future__ import annotations

import re
import shutil
import socket
import time
from contextlib import contextmanager

import pytest
from mta import Postfix, Server, Sink, postfix_root, swaks, talk
from ports import free_port

CONFIG = """
[domains]
protected = ["army.mil", "example.org", "bücher.de"]

[[rules]]
domain = "warn.example"
action = "warn"

[[rules]]
domain = "gesperrt.example"
action = "reject"
message = "Bitte nicht an gesperrt.example schreiben: fragen Sie die Poststelle (Zürich)."

[gateway]
journal = "journal.jsonl"
"""


def start_proxy(tmp, next_hop_port: int, settings: str = "") -> Server:
    config = tmp / "typogate.toml"
    config.write_text(CONFIG + settings)
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


@contextmanager
def proxy_to_sink(tmp, settings: str = "", **offers):
    """A proxy, configured with ``settings`` besides the test's own, in front of a recording
    next hop that offers ``offers`` (``smtputf8``, ``offers_size``): ``(proxy, next hop)``,
    both stopped afterwards."""
    sink = Sink(free_port(), **offers).start()
    proxy = start_proxy(tmp, sink.port, settings)
    try:
        yield proxy, sink
    finally:
        proxy.stop()
        sink.stop()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    with proxy_to_sink(tmp_path_factory.mktemp("proxy")) as pair:
        yield pair


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


def _reply_shown_as(shown: str, subject: str) -> list[str]:
    """The SMTP lines and message of a reply to ceo@evil.com and jane@army.mil whose To
    header shows ceo@evil.com under the name ``shown``."""
    content = (
        f'From: alice@example.org\r\nTo: "{shown}" <ceo@evil.com>, Jane <jane@army.mil>\r\n'
        f"Subject: {subject}\r\n\r\nSee you there."
    )
    return [
        "MAIL FROM:<alice@example.org>",
        "RCPT TO:<ceo@evil.com>",
        "RCPT TO:<jane@army.mil>",
        "DATA",
        content,
    ]


# A reply to mail whose Reply-To was forged: the To header shows ceo@army.mil, the mail
# goes to evil.com. The proxy answers RCPT before any header comes, and relayed it; the
# milter removes such a recipient. The proxy refuses the message at DATA, the whole of it
# (it keeps no queue, and has told the next hop of every recipient).
def test_a_recipient_shown_as_an_address_we_protect_is_refused_at_data(proxied):
    proxy, sink = proxied
    *lines, content = _reply_shown_as("ceo@army.mil", "forged reply-to")
    replies = talk(proxy.port, lines, content)
    code, text = replies[-1]
    assert code == 550, replies
    assert "ceo@evil.com is shown as ceo@army.mil" in text
    assert "Did you mean ceo@army.mil?" in text
    *lines, content = _reply_shown_as("Ceo", "a plain name")  # the same mail, a name
    assert talk(proxy.port, lines, content)[-1][0] == 250
    sink.wait_for(lambda m: b"a plain name" in m.data)
    assert not [m for m in sink.to("ceo@evil.com") if b"forged reply-to" in m.data]


# What a message refused at DATA teaches: nothing. The proxy learned from each recipient it
# passed at RCPT, so refused replies made evil.com a correspondent of the sender (believed,
# from a trusted network), which would lift the display name's look-alike.
def test_a_message_refused_at_data_teaches_nothing(tmp_path):
    trusted = 'trusted_networks = ["127.0.0.1/32"]\n'  # in CONFIG's [gateway]
    with proxy_to_sink(tmp_path, trusted) as (proxy, sink):
        for attempt in range(4):
            *lines, content = _reply_shown_as("ceo@army.mil", f"attempt {attempt}")
            replies = talk(proxy.port, lines, content)
            assert replies[-1][0] == 550, (attempt, replies)
        assert not sink.to("ceo@evil.com")


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


def test_internationalised_mail_is_judged_and_relayed(tmp_path):
    # RFC 6531: a client that says SMTPUTF8 may write UTF-8 addresses. The proxy used to
    # refuse them all ("SMTPUTF8 disabled"): mail to jöhn@bücher.de could not pass at all.
    with proxy_to_sink(tmp_path, smtputf8=True) as (proxy, sink):
        replies = talk(
            proxy.port,
            [
                "MAIL FROM:<alice@example.org> SMTPUTF8",
                "RCPT TO:<jöhn@bücher.de>",
                "RCPT TO:<ivan@аrmy.mil>",  # a Cyrillic а
                "DATA",
            ],
            "Subject: utf8\r\n\r\nvia proxy, UTF-8",
        )
        assert [code for code, _ in replies] == [250, 250, 550, 354, 250], replies
        assert "did you mean army.mil?" in replies[2][1]
        delivered = sink.wait_for(lambda m: b"via proxy, UTF-8" in m.data)
        assert delivered.recipients == ["jöhn@bücher.de"]
        # Without SMTPUTF8 a UTF-8 address is refused as RFC 6531 says, not judged or passed.
        replies = talk(
            proxy.port,
            ["MAIL FROM:<alice@example.org>", "RCPT TO:<ivan@аrmy.mil>", "RCPT TO:<jo@army.mil>"],
            "",
        )
        assert [reply for _, reply in replies][1] == "5.6.7 a non-ASCII address needs SMTPUTF8"
        assert [code for code, _ in replies] == [250, 553, 250], replies
        assert "Traceback" not in proxy.log_path.read_text()


def test_an_smtputf8_client_is_answered_in_its_own_letters(tmp_path):
    """Before: every refusal was ASCII, even to a client that said SMTPUTF8 and wrote the
    address in UTF-8: "did you mean xn--bcher-kva.de?", and an admin's rule message with
    "\\u00fc" for each ü. RFC 6531 lets the reply carry UTF-8 then (the typed domain with
    its A-label too, which shows a look-alike for what it is); without SMTPUTF8 the reply
    stays ASCII."""
    with proxy_to_sink(tmp_path, smtputf8=True) as (proxy, sink):
        replies = talk(
            proxy.port,
            [
                "MAIL FROM:<alice@example.org> SMTPUTF8",
                "RCPT TO:<jo@büher.de>",
                "RCPT TO:<jo@gesperrt.example>",
                "RCPT TO:<ivan@аrmy.mil>",  # a Cyrillic а
            ],
        )
        assert [code for code, _ in replies] == [250, 550, 550, 550], replies
        assert "аrmy.mil (xn--rmy-5cd.mil) looks like a mistake" in replies[3][1], replies
        said = "büher.de (xn--bher-0ra.de) looks like a mistake: did you mean bücher.de?"
        assert said in replies[1][1], replies
        assert "fragen Sie die Poststelle (Zürich)." in replies[2][1]
        replies = talk(
            proxy.port,
            ["MAIL FROM:<alice@example.org>", "RCPT TO:<jo@xn--bher-0ra.de>"],
        )
        assert "did you mean xn--bcher-kva.de?" in replies[1][1], replies
        assert replies[1][1].isascii()


def test_a_next_hop_without_smtputf8_refuses_what_needs_it(tmp_path):
    with proxy_to_sink(tmp_path) as (proxy, sink):  # no SMTPUTF8
        replies = talk(proxy.port, ["MAIL FROM:<alice@example.org> SMTPUTF8"], "")
        assert replies[0][0] >= 500, replies  # the next hop's refusal, passed on
        assert sink.messages == []


def test_a_next_hop_is_told_only_the_mail_parameters_it_offers(tmp_path):
    # The proxy offers SIZE and passed a client's SIZE= on to a next hop that offers none:
    # a strict one (RFC 1870) refused the MAIL, and with it the whole message.
    with proxy_to_sink(tmp_path, offers_size=False) as (proxy, sink):
        replies = talk(
            proxy.port,
            [
                "MAIL FROM:<alice@example.org> BODY=8BITMIME SIZE=100",
                "RCPT TO:<jo@army.mil>",
                "DATA",
            ],
            "Subject: sized\r\n\r\nvia proxy, sized",
        )
        assert [code for code, _ in replies] == [250, 250, 354, 250], replies
        delivered = sink.wait_for(lambda m: b"via proxy, sized" in m.data)
        assert delivered.mail_options == ["BODY=8BITMIME"]  # what changes the delivery stays


def raw_session(port: int, lines: list[bytes]) -> list[bytes]:
    """One SMTP session written byte for byte (what smtplib cannot send); the last line of
    each reply, the greeting's first."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        replies = client.makefile("rb")
        said = [replies.readline()]
        for line in lines:
            client.sendall(line + b"\r\n")
            while (reply := replies.readline())[3:4] == b"-":
                pass
            said.append(reply.rstrip(b"\r\n"))
        return said


def test_an_address_that_is_not_utf8_is_refused_as_postfix_refuses_it(tmp_path):
    """Before: MAIL FROM with a byte that is not UTF-8 (after SMTPUTF8) got Python's words,
    "501 5.1.7 'utf-8' codec can't encode character '\\udcff' in position 2: surrogates
    not allowed", once a session with the next hop had been opened for it; such a RCPT TO
    was judged by its domain, let pass, and failed on its way to the next hop: "500 Error:
    (UnicodeEncodeError) ...". Postfix answers both "500 5.5.2 Error: bad UTF-8 syntax";
    the proxy now refuses them before anything else, in words."""
    with proxy_to_sink(tmp_path, smtputf8=True) as (proxy, sink):
        said = raw_session(
            proxy.port,
            [
                b"EHLO client.example",
                b"MAIL FROM:<al\xffice@example.org> SMTPUTF8",
                b"MAIL FROM:<alice@example.org> SMTPUTF8",
                b"RCPT TO:<jo\xffhn@army.mil>",
                b"QUIT",
            ],
        )
        assert said[2:5] == [
            b"501 5.1.7 the sender address is not valid UTF-8",
            b"250 OK",
            b"501 5.1.3 the recipient address is not valid UTF-8",
        ], said
        assert sink.messages == []
        assert "Traceback" not in proxy.log_path.read_text()


def test_an_address_with_a_control_character_is_refused_in_words(tmp_path):
    """Before: MAIL FROM with a NUL was answered in aiosmtplib's words ("Command arg
    contains a prohibited control character"), once a session with the next hop had been
    opened for it; RCPT TO with a control character was judged by its domain, let pass,
    and failed on its way to the next hop: "500 Error: (ValueError) ..." and a traceback.
    RFC 5321 allows no control character in an address, and no SMTP client writes one on:
    the proxy now refuses them before anything else, in words."""
    with proxy_to_sink(tmp_path) as (proxy, sink):
        said = raw_session(
            proxy.port,
            [
                b"EHLO client.example",
                b"MAIL FROM:<al\x00ice@example.org>",
                b"MAIL FROM:<alice@example.org>",
                b"RCPT TO:<jo\x01hn@army.mil>",
                b'RCPT TO:<"jo\x7fhn"@army.mil>',
                b"QUIT",
            ],
        )
        assert said[2:6] == [
            b"501 5.1.7 the sender address holds a control character (U+0000)",
            b"250 OK",
            b"501 5.1.3 the recipient address holds a control character (U+0001)",
            b"501 5.1.3 the recipient address holds a control character (U+007F)",
        ], said
        assert sink.messages == []
        assert "Traceback" not in proxy.log_path.read_text()


def test_an_address_with_a_unicode_line_break_is_refused_as_a_control_character(tmp_path):
    """Before: under SMTPUTF8, a C1 control (U+0085, NEL) or U+2028 in an address was let
    through to the next hop: a line break to every mail program that shows the address,
    which no header can carry (the notice refused such a sender; the proxy did not)."""
    with proxy_to_sink(tmp_path, smtputf8=True) as (proxy, sink):
        said = raw_session(
            proxy.port,
            [
                b"EHLO client.example",
                "MAIL FROM:<al\u0085ice@example.org> SMTPUTF8".encode(),
                b"MAIL FROM:<alice@example.org> SMTPUTF8",
                "RCPT TO:<jo\u2028hn@army.mil>".encode(),
                b"QUIT",
            ],
        )
        assert said[2:5] == [
            b"501 5.1.7 the sender address holds a control character (U+0085)",
            b"250 OK",
            b"501 5.1.3 the recipient address holds a control character (U+2028)",
        ], said
        assert sink.messages == []


# Paths on which Python's header parser, which aiosmtpd reads every path with, raises
# something other than its HeaderParseError.
UNPARSABLE = ['<@a,(a"@example.org>', '<"a"\u00e9@["@example.org>']


def test_a_path_the_address_parser_trips_on_is_a_malformed_address(tmp_path):
    """Before: ``MAIL FROM:<@a,(a"@example.org>`` made Python's address parser raise
    IndexError, and ``<"a"é@["@example.org>`` AttributeError; aiosmtpd expects neither,
    so the client read "500 Error: (IndexError) string index out of range" and the log a
    traceback, at each such command. Now it is told what any malformed path is told."""
    with proxy_to_sink(tmp_path) as (proxy, sink):
        lines = [f"MAIL FROM:{path}" for path in UNPARSABLE]
        lines += ["MAIL FROM:<alice@example.org>"]
        lines += [f"RCPT TO:{path}" for path in UNPARSABLE]
        replies = talk(proxy.port, lines)
        assert [code for code, _ in replies] == [553, 553, 250, 553, 553], replies
        assert "Traceback" not in proxy.log_path.read_text()
