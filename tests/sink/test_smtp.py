"""The sink's SMTP answers, from a real SMTP client to a real ``typogate sink run``: the
hint at RCPT, the ordinary 5.1.1, relay refused, DATA never accepted, SMTPUTF8, and a real
registrant's mail passed on to its own server."""

from __future__ import annotations

import smtplib
import socket
from contextlib import contextmanager

import pytest
from mta import Sink, talk
from ports import free_port
from sink_process import forwarded

HINT = (
    "550 5.1.2 <john@army.ml>: army.ml is not army.mil. Did you mean john@army.mil? "
    "Nothing was delivered or kept."
)


def rcpt(port: int, recipient: str, *, utf8: bool = False) -> str:
    """One transaction up to RCPT; the sink's whole reply line."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mail.sender.example")
        code, text = client.mail("alice@sender.example", ["SMTPUTF8"] if utf8 else [])
        assert code == 250, text
        code, text = client.rcpt(recipient)
        return f"{code} {text.decode()}"


def test_a_likely_typo_is_refused_with_the_address_the_sender_meant(sink_in):
    sink = sink_in()
    assert rcpt(sink.port, "john@army.ml") == HINT
    # Subdomains and case: the hint keeps what the sender typed on the left of the @.
    assert rcpt(sink.port, "Jane.Doe@AF.ML") == (
        "550 5.1.2 <Jane.Doe@AF.ML>: af.ml is not af.mil. Did you mean Jane.Doe@af.mil? "
        "Nothing was delivered or kept."
    )


def test_anything_else_gets_an_ordinary_refusal(sink_in):
    sink = sink_in()
    assert rcpt(sink.port, "bob@qwzxkv.ml") == (
        "550 5.1.1 <bob@qwzxkv.ml>: no such mailbox; qwzxkv.ml takes no mail. "
        "Nothing was delivered or kept."
    )
    # A domain the sink does not answer for is not relayed anywhere.
    assert rcpt(sink.port, "bob@example.com").startswith("550 5.7.1 <bob@example.com>: relay")
    # An address that cannot be read is refused, by aiosmtpd's parser or by the sink's.
    for unreadable in ("bob@@army.ml", "bob@-army.ml", "bob@army..ml"):
        assert rcpt(sink.port, unreadable)[:10] in ("501 5.1.3 ", "553 5.1.3 ")


def test_the_greeting_names_the_host_and_no_software_version(sink_in):
    # The sink answers anyone: a greeting with the library's name and version tells a
    # scanner which advisories to try.
    sink = sink_in()
    with socket.create_connection(("127.0.0.1", sink.port), timeout=10) as sock:
        greeting = sock.makefile("rb").readline().decode()
    assert greeting == "220 sink.test.example ESMTP\r\n"


def test_data_is_never_accepted(sink_in):
    sink = sink_in()
    with socket.create_connection(("127.0.0.1", sink.port), timeout=10) as raw:
        reader = raw.makefile("rb")

        def say(line: str) -> str:
            raw.sendall(line.encode() + b"\r\n")
            reply = reader.readline().decode()
            while reply[3:4] == "-":  # a multi-line reply
                reply = reader.readline().decode()
            return reply.strip()

        assert reader.readline().startswith(b"220 ")
        assert say("EHLO mail.sender.example").startswith("250 ")
        assert say("MAIL FROM:<alice@sender.example>").startswith("250")
        assert say("RCPT TO:<john@army.ml>").startswith("550 5.1.2")
        assert say("RCPT TO:<mary@navy.ml>").startswith("550 5.1.2")
        # No recipient was accepted, so DATA is refused and what follows is not a message.
        assert say("DATA").startswith("503 ")
        assert not say("Subject: the travel plans").startswith(("250", "354"))
        assert say(".").startswith("5")
        assert say("QUIT").startswith("221")


def test_smtputf8_addresses_get_their_hint_in_unicode(sink_in):
    sink = sink_in()
    assert rcpt(sink.port, "jöhn@army.ml", utf8=True) == (
        "550 5.1.2 <jöhn@army.ml>: army.ml is not army.mil. Did you mean jöhn@army.mil? "
        "Nothing was delivered or kept."
    )


@contextmanager
def registrant_behind(sink_in, **offers):
    """The registrant of armyshop.ml: its own server (a recording SMTP server that offers
    ``offers``) and a sink that forwards its mail there, as ``(server, sink)``."""
    registrant = Sink(free_port(), **offers).start()
    try:
        yield registrant, sink_in(serve=forwarded("armyshop.ml", registrant.port))
    finally:
        registrant.stop()


def send(port: int, recipients: list[str], message: str | bytes, options: list[str]) -> dict:
    """One message from alice@sender.example through the sink, with MAIL ``options``; the
    recipients it refused."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mail.sender.example")
        return client.sendmail("alice@sender.example", recipients, message, options)


def test_a_real_registrant_gets_its_mail_through_its_own_server(sink_in):
    with registrant_behind(sink_in) as (registrant, sink):
        refused = send(
            sink.port,
            ["orders@armyshop.ml", "john@army.ml"],
            "Subject: order\r\n\r\nten boxes\r\n",
            [],
        )
        # The typo is still refused with its hint; the registrant's recipient is delivered.
        assert refused == {"john@army.ml": (550, HINT[4:].encode())}
        delivered = registrant.wait_for(lambda m: "orders@armyshop.ml" in m.recipients)
        assert delivered.recipients == ["orders@armyshop.ml"]
        assert b"ten boxes" in delivered.data


def test_a_registrants_utf8_recipient_is_forwarded_too(sink_in):
    # The forward said SMTPUTF8 to the registrant's server but wrote RCPT in ASCII: a UTF-8
    # recipient failed to encode and the sender was told 451, again and again.
    with registrant_behind(sink_in, smtputf8=True) as (registrant, sink):
        refused = send(
            sink.port,
            ["bestellung-jörg@armyshop.ml"],
            b"Subject: order\r\n\r\nzehn Kisten\r\n",
            ["SMTPUTF8"],
        )
        assert refused == {}
        delivered = registrant.wait_for(lambda m: b"zehn Kisten" in m.data)
        assert delivered.recipients == ["bestellung-jörg@armyshop.ml"]


def test_the_forward_keeps_the_senders_mail_parameters(sink_in):
    # The sink offers 8BITMIME and took BODY=8BITMIME, then forwarded the 8-bit message
    # without it (RFC 6152): the registrant's server was told 7-bit and got 8-bit.
    with registrant_behind(sink_in) as (registrant, sink):
        refused = send(
            sink.port,
            ["orders@armyshop.ml"],
            "Subject: order\r\n\r\nzehn Kisten für Jörg\r\n".encode(),
            ["BODY=8BITMIME"],
        )
        assert refused == {}
        delivered = registrant.wait_for(lambda m: "Jörg".encode() in m.data)
        assert "BODY=8BITMIME" in delivered.mail_options
        assert any(option.startswith("SIZE=") for option in delivered.mail_options)


def test_a_utf8_sender_without_smtputf8_is_refused_not_deferred(sink_in):
    # The forward could not write the sender to the registrant's server and said 451
    # ("unreachable"): the sender's server tried again for days. RFC 6531 makes it 553.
    with registrant_behind(sink_in, smtputf8=True) as (registrant, sink):
        replies = talk(
            sink.port,
            [
                "MAIL FROM:<jörg@sender.example>",
                "RCPT TO:<orders@armyshop.ml>",
                "RCPT TO:<john@army.ml>",
            ],
        )
        assert replies[1] == (553, "5.6.7 a non-ASCII address needs SMTPUTF8"), replies
        assert replies[2] == (550, HINT[4:]), replies  # the hint is still given
        assert registrant.messages == []


@pytest.mark.parametrize(
    ("sender", "refusal"),
    [
        (b"j\xf6rg", "501 5.1.7 the sender address is not valid UTF-8"),
        (b"j\x01rg", "501 5.1.7 the sender address holds a control character (U+0001)"),
    ],
)
def test_a_sender_no_one_can_pass_on_is_refused_in_its_own_words(sink_in, sender, refusal):
    """Before: a sender with a byte that is not UTF-8, after SMTPUTF8, forwarded to a
    registrant, was told "553 5.6.7 a non-ASCII address needs SMTPUTF8", which it had
    said; a sender with a control character (which no SMTP client writes on) was told
    "451 the recipient's mail server is unreachable", and its server tried again for days.
    Now each reads what the proxy says of such a sender."""
    with registrant_behind(sink_in, smtputf8=True) as (registrant, sink):
        with socket.create_connection(("127.0.0.1", sink.port), timeout=10) as client:
            replies = client.makefile("rb")
            said = [replies.readline()]
            for line in (
                b"EHLO mail.sender.example",
                b"MAIL FROM:<" + sender + b"@sender.example> SMTPUTF8",
                b"RCPT TO:<orders@armyshop.ml>",
                b"RCPT TO:<john@army.ml>",
            ):
                client.sendall(line + b"\r\n")
                while (reply := replies.readline())[3:4] == b"-":
                    pass
                said.append(reply.rstrip(b"\r\n").decode())
        assert said[3] == refusal, said
        assert said[4] == HINT, said  # the hint is still given
        assert registrant.messages == []


def test_a_path_the_address_parser_trips_on_costs_no_traceback(sink_in):
    """Before: the sink, on port 25 for anyone, answered ``RCPT TO:<@a,(a"@example.org>``
    "500 Error: (IndexError) string index out of range" and wrote a traceback to its log,
    some 2 KB for a line of 30 bytes, at every such command, as fast as a client sent
    them: a stranger could fill the disk with the log. Now it is a malformed address."""
    sink = sink_in()
    replies = talk(
        sink.port,
        ["MAIL FROM:<alice@sender.example>", *['RCPT TO:<@a,(a"@example.org>'] * 50],
    )
    assert {code for code, _ in replies[1:]} == {553}, replies[:3]
    assert "Traceback" not in sink.log
