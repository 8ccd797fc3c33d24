"""Every spelling that used to get mail for john@army.ml (and jane@gmial.com) delivered
(issue 15), sent through a real Postfix 3.7 for each adapter: not one is delivered.

* policy: client -> Postfix (check_policy_service, default_action=DUNNO) -> sink;
* milter: client -> Postfix (smtpd_milters, milter_default_action=accept) -> sink;
* proxy: client -> typogate proxy -> Postfix -> sink, so the proxy reads each spelling as
  the client wrote it and Postfix's own rewriting (percent hack, bang path) comes after it.

The sink offers SMTPUTF8, as most next hops do, so a UTF-8 address that slipped through
would really arrive. Postfix's ``mydestination`` holds ``OWN_HOST``, the host the percent
hack and bang path spellings route through.
"""

from __future__ import annotations

import shutil
import smtplib
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mta import Postfix, Server, Sink, postfix_root, read_policy_answer
from ports import free_port

pytestmark = [
    pytest.mark.postfix,
    pytest.mark.skipif(shutil.which("postfix") is None, reason="make test installs postfix"),
]

OWN_HOST = "typogate-test.localdomain"  # tests/mta.py's myhostname
SENDER = "alice@example.org"
TYPO_DOMAINS = ("army.ml", "gmial.com")

CONFIG = f"""
[domains]
protected = ["army.mil", "gmail.com", "example.org", "aol.com"]

[[rules]]
domain = "quota.example"
action = "reject"
message = "Mail to quota.example is 100% refused here."

[gateway]
journal = "journal.jsonl"
own_domains = ["{OWN_HOST}", "localhost"]
trusted_networks = ["192.0.2.0/24"]
"""

POSTFIX = {"mydestination": f"{OWN_HOST}, localhost"}


def _full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) for ch in text)


def spellings(domain: str) -> list[tuple[str, str]]:
    """(name, address) of every spelling of issue 15's table for one typo domain, and the
    mappings Postfix and UTS #46 make (case, width, dots)."""
    name, _, suffix = domain.rpartition(".")
    return [
        ("quoted-space", f'"john doe"@{domain}'),
        ("quoted-at", f'"j@x"@{domain}'),
        ("quoted-double-dot", f'"john..doe"@{domain}'),
        ("quoted-leading-dot", f'".john"@{domain}'),
        ("quoted-comma", f'"a,b"@{domain}'),
        ("over-254-characters", "j" * 250 + f"@{domain}"),
        ("local-U+200B", f"john\u200b@{domain}"),
        ("local-U+202E", f"john\u202e@{domain}"),
        ("local-U+00A0", f"john\u00a0@{domain}"),
        ("local-U+200E", f"john\u200e@{domain}"),
        ("local-U+00AD", f"john\u00ad@{domain}"),
        ("domain-U+200B", f"john@{name}\u200b.{suffix}"),
        ("domain-U+00AD", f"john@{name[:2]}\u00ad{name[2:]}.{suffix}"),
        ("domain-U+FEFF", f"john@{domain}\ufeff"),
        ("percent-hack", f"john%{domain}@{OWN_HOST}"),
        ("bang-path", f"{domain}!john@{OWN_HOST}"),
        ("upper-case", f"john@{domain.upper()}"),
        ("full-width", f"john@{_full_width(name)}.{suffix}"),
        ("ideographic-dot", f"john@{name}\u3002{suffix}"),
        ("full-width-dot", f"john@{name}\uff0e{suffix}"),
        ("trailing-dot", f"john@{domain}."),
        # A name in brackets: no address literal, but a relay (sendmail) takes it as the host
        # to deliver to without its MX, and Postfix passes it on to a relayhost.
        ("bracketed-name", f"john@[{domain}]"),
    ]


SPELLINGS = [
    pytest.param(address, id=f"{domain}-{name}")
    for domain in TYPO_DOMAINS
    for name, address in spellings(domain)
]


@dataclass
class Gate:
    """One adapter in front of the sink: ``port`` is where a client sends mail."""

    adapter: str
    port: int
    sink: Sink
    typogate: Server


@dataclass
class Outcome:
    """How far one message got: the last command answered and its reply."""

    command: str
    code: int
    reply: str
    raw: bytes  # the reply as it came, for what a client without SMTPUTF8 can read

    @property
    def accepted(self) -> bool:
        return self.command == "DATA" and self.code == 250


def send(port: int, recipient: str, sender: str = SENDER) -> tuple[Outcome, str]:
    """Offer one message over SMTP, SMTPUTF8 when an address needs it; how far it got, and
    the marker its subject and body carry."""
    marker = uuid.uuid4().hex
    utf8 = " SMTPUTF8" if not (recipient + sender).isascii() else ""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.command_encoding = "utf-8"  # the addresses go as written, not quoted again
        client.ehlo("client.example")
        for command, line in (
            ("MAIL", f"MAIL FROM:<{sender}>{utf8}"),
            ("RCPT", f"RCPT TO:<{recipient}>"),
            ("DATA", "DATA"),
        ):
            code, reply = client.docmd(line)
            if code >= 400:
                return Outcome(command, code, reply.decode(errors="replace"), reply), marker
        client.send(f"Subject: {marker}\r\n\r\n{marker}\r\n.\r\n".encode())
        code, reply = client.getreply()
        return Outcome("DATA", code, reply.decode(errors="replace"), reply), marker


def leaked(sink: Sink, marker: str) -> list:
    """Messages with ``marker`` that reached anyone but the sender (a bounce to the sender
    is not a leak)."""
    with sink.lock:
        return [m for m in sink.messages if marker.encode() in m.data and m.recipients != [SENDER]]


def _typogate(adapter: str, tmp: Path, next_hop: int | None = None) -> Server:
    config = tmp / "typogate.toml"
    config.write_text(CONFIG)
    port = free_port()
    if adapter == "policy":
        args = ["policy", "--listen", f"127.0.0.1:{port}"]
    elif adapter == "milter":
        args = ["milter", "--listen", f"inet:{port}@127.0.0.1"]
    else:
        args = ["proxy", "--listen", f"127.0.0.1:{port}", "--next-hop", f"127.0.0.1:{next_hop}"]
    return Server([*args, "--config", str(config)], port, tmp / f"{adapter}.log").start()


@pytest.fixture(scope="module", params=["policy", "milter", "proxy"])
def gate(request, tmp_path_factory) -> Iterator[Gate]:
    adapter = request.param
    tmp = tmp_path_factory.mktemp(adapter)
    sink = Sink(free_port(), smtputf8=True).start()
    smtpd_port = free_port()
    settings = dict(POSTFIX)
    typogate = None
    if adapter == "policy":
        typogate = _typogate(adapter, tmp)
        settings["smtpd_recipient_restrictions"] = (
            f"check_policy_service {{ inet:127.0.0.1:{typogate.port}, default_action=DUNNO }}"
        )
    elif adapter == "milter":
        typogate = _typogate(adapter, tmp)
        settings["smtpd_milters"] = f"inet:127.0.0.1:{typogate.port}"
        settings["milter_default_action"] = "accept"
        settings["milter_protocol"] = "6"
    else:
        typogate = _typogate(adapter, tmp, next_hop=smtpd_port)
    postfix = Postfix(postfix_root(), smtpd_port, sink.port, settings)
    try:
        postfix.start()
        port = typogate.port if adapter == "proxy" else smtpd_port
        yield Gate(adapter, port, sink, typogate)
    finally:
        postfix.remove()
        typogate.stop()
        sink.stop()


@pytest.mark.parametrize("recipient", SPELLINGS)
def test_no_spelling_of_a_typo_domain_is_delivered(gate, recipient):
    outcome, marker = send(gate.port, recipient)
    assert not outcome.accepted, f"{gate.adapter} let {recipient!r} through: {outcome}"
    assert outcome.code >= 400
    assert leaked(gate.sink, marker) == []


@pytest.mark.parametrize(
    ("recipient", "said"),
    [
        # aoI.com reads as aol.com and goes to aoi.com: each adapter must see the case as sent.
        ("john@aoI.com", "aol.com"),
        # A Cyrillic a in gmai.co, one slip from gmail.com and weakly near it: a spoof.
        ("john@gm\u0430i.co", "spoofing trick"),
        # aol.com in Cyrillic letters, with a palochka drawn as the l: whole-script.
        ("john@\u0430\u043e\u04cf.com", "aol.com"),
        # A dotless i with a dot above: gmail.com to a reader.
        ("john@gma\u0131\u0307l.com", "gmail.com"),
        # aol.co in Cyrillic letters: read as Latin, a slip of aol.com.
        ("john@\u0430\u043e\u04cf.co", "aol.com"),
        # aol.com with an accent: as easily overlooked as a look-alike.
        ("john@a\u00f3l.com", "aol.com"),
        # A capital iota, read as an l, goes as a small iota: aoƖ.com reads as aol.com.
        ("john@ao\u0196.com", "aol.com"),
        # An l with a stroke drawn in (no accent to take off), and a small capital A.
        ("john@ao\u0142.com", "aol.com"),
        ("john@\u1d00ol.com", "aol.com"),
        # A protected domain in full in front of a stranger's: read as army.mil.
        ("john@army.mil.evil.com", "army.mil"),
        # A slip of one in front of a stranger's: read as gmail.com, as gmial.com alone is.
        ("john@gmial.com.evil.com", "did you mean gmail.com?"),
        # An address in the local part, which its reader takes for the address.
        ('"john@army.mil"@evil.com', "begins with john@army.mil"),
    ],
)
def test_a_look_alike_a_reader_cannot_tell_is_refused(gate, recipient, said):
    outcome, marker = send(gate.port, recipient)
    assert outcome.code == 550 and said in outcome.reply, outcome
    assert leaked(gate.sink, marker) == []


@pytest.mark.parametrize(
    "recipient", [f"john%aoI.com@{OWN_HOST}", f"aoI.com!john@{OWN_HOST}", "john@aoI.com (work)"]
)
def test_a_capital_i_is_read_wherever_the_route_names_the_host(gate, recipient):
    # Postfix routes the percent hack and the bang path on from its own host to aoi.com;
    # the capital I there reads as an l, as it does after the @-sign.
    outcome, marker = send(gate.port, recipient)
    assert not outcome.accepted and "aol.com" in outcome.reply, outcome
    assert leaked(gate.sink, marker) == []


def test_the_plain_typo_is_refused_with_the_suggestion(gate):
    outcome, _ = send(gate.port, "john@army.ml")
    assert outcome.code == 550 and "did you mean army.mil?" in outcome.reply, outcome


def test_an_envelope_sender_in_the_typo_domain_does_not_make_it_its_own(gate):
    # issue 15: sender=x@army.ml was "allowed.own_domain"; the client here is neither
    # authenticated nor in gateway.trusted_networks.
    outcome, marker = send(gate.port, "john@army.ml", sender="x@army.ml")
    assert not outcome.accepted and outcome.code == 550, outcome
    assert leaked(gate.sink, marker) == []


def test_an_address_typogate_cannot_read_is_deferred_with_a_log_line(gate):
    # Postfix takes an underscore in a host name; typogate cannot read x_y.army.ml as a
    # domain name, so it is deferred (gateway.unreadable_address), never waved through.
    outcome, marker = send(gate.port, "john@x_y.army.ml")
    when = "DATA" if gate.adapter == "milter" else "RCPT"  # the milter decides at its end
    assert (outcome.command, outcome.code) == (when, 450), outcome
    assert "4.1.3" in outcome.reply and "cannot tell where mail" in outcome.reply
    assert leaked(gate.sink, marker) == []
    assert "cannot read where 'john@x_y.army.ml' goes" in gate.typogate.log


@pytest.mark.parametrize(
    ("recipient", "said"),
    [
        # A Cyrillic а in army.mil, as the A-label a client without SMTPUTF8 sends: the
        # reply names it so, where its Unicode form would read "army.mil ... army.mil?".
        ("john@xn--rmy-5cd.mil", "xn--rmy-5cd.mil looks like a mistake: did you mean army.mil?"),
        # An A-label that decodes to a letter no domain may have: the reason quotes it.
        ("john@xn--gmal-zta.com", "cannot tell where mail to this recipient goes"),
    ],
    ids=["look-alike", "unreadable"],
)
def test_a_client_without_smtputf8_is_answered_in_ascii(gate, recipient, said):
    # RFC 5321 reply text is ASCII; only a client that asked for SMTPUTF8 reads UTF-8, and
    # Postfix passes a policy service's or a milter's text on as it is.
    outcome, marker = send(gate.port, recipient)
    assert outcome.code >= 400 and said in outcome.reply, outcome
    assert outcome.raw.isascii(), outcome.raw
    assert leaked(gate.sink, marker) == []


def test_a_refusal_stays_within_one_reply_line_however_long_the_address(gate):
    # RFC 5321 4.5.3.1.5: a reply line is at most 512 octets. typogate's reason quotes the
    # domain twice, and every Cyrillic letter in it is written as a six-letter escape.
    # (Postfix refuses the U+202E itself, 501; the proxy reads the address first.)
    label = "\u0436" * 25
    outcome, marker = send(gate.port, f"john@\u202e{label}.{label}.{label}.ml")
    assert outcome.code in (450, 501) and outcome.command == "RCPT", outcome
    assert len(outcome.raw) + len("450 \r\n") <= 512, len(outcome.raw)
    assert leaked(gate.sink, marker) == []


def test_a_rule_message_reaches_the_client_as_written(gate):
    # libmilter drops a reply text with a lone "%" (it reads it as printf's), and Postfix
    # then says only "5.7.1 Command rejected": the admin's words must arrive whole.
    outcome, marker = send(gate.port, "ann@quota.example")
    assert outcome.code == 550, outcome
    assert "Mail to quota.example is 100% refused here." in outcome.reply, outcome
    assert leaked(gate.sink, marker) == []


def test_a_good_recipient_still_goes_through(gate):
    outcome, marker = send(gate.port, "jane@army.mil")
    assert outcome.accepted, outcome
    gate.sink.wait_for(lambda m: marker.encode() in m.data and m.recipients == ["jane@army.mil"])


def test_nothing_reached_a_typo_domain_afterwards(gate):
    # Runs after the others for this adapter: whatever Postfix queued has had time to go.
    time.sleep(3)
    with gate.sink.lock:
        delivered = [r for m in gate.sink.messages for r in m.recipients]
    assert all(r.endswith("@army.mil") for r in delivered), delivered


def _policy_request(port: int, **attributes: str) -> str:
    text = "".join(f"{name}={value}\n" for name, value in attributes.items()) + "\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(text.encode())
        answer = read_policy_answer(client)
    return answer.decode().removeprefix("action=").strip()


@pytest.mark.parametrize(
    ("trust", "expected"),
    [
        ({}, "550 "),
        ({"client_address": "127.0.0.1"}, "550 "),
        ({"sasl_username": "x"}, "DUNNO"),
        ({"client_address": "192.0.2.7"}, "DUNNO"),  # gateway.trusted_networks
    ],
    ids=["envelope-claim", "untrusted-client", "authenticated", "trusted-network"],
)
def test_own_domain_needs_an_authenticated_or_trusted_sender(gate, trust, expected):
    if gate.adapter != "policy":
        pytest.skip("the policy request carries sasl_username and client_address")
    answer = _policy_request(
        gate.typogate.port,
        request="smtpd_access_policy",
        protocol_state="RCPT",
        sender="x@army.ml",
        recipient="john@army.ml",
        **trust,
    )
    assert answer.startswith(expected), answer


ROUTED = [
    pytest.param(address, id=f"{domain}-{name}")
    for domain in TYPO_DOMAINS
    for name, address in spellings(domain)
    if name in ("percent-hack", "bang-path")
]


@pytest.fixture(scope="module")
def own_domains_unknown(tmp_path_factory) -> Iterator[Gate]:
    """The policy service on the default configuration: gateway.own_domains not set."""
    tmp = tmp_path_factory.mktemp("unknown")
    (tmp / "typogate.toml").write_text(CONFIG.replace("own_domains", "# own_domains"))
    port = free_port()
    policy = Server(
        ["policy", "--listen", f"127.0.0.1:{port}", "--config", str(tmp / "typogate.toml")],
        port,
        tmp / "policy.log",
    ).start()
    sink = Sink(free_port(), smtputf8=True).start()
    restriction = f"check_policy_service {{ inet:127.0.0.1:{port}, default_action=DUNNO }}"
    settings = {**POSTFIX, "smtpd_recipient_restrictions": restriction}
    postfix = Postfix(postfix_root(), free_port(), sink.port, settings)
    try:
        postfix.start()
        yield Gate("policy", postfix.smtpd_port, sink, policy)
    finally:
        postfix.remove()
        policy.stop()
        sink.stop()


@pytest.mark.parametrize("recipient", ROUTED)
def test_routed_spellings_are_refused_when_own_domains_are_unknown(own_domains_unknown, recipient):
    # Without gateway.own_domains typogate cannot tell whether the @-host is Postfix's
    # own: it judges every host the address may reach, and the typo among them decides.
    outcome, marker = send(own_domains_unknown.port, recipient)
    assert (outcome.command, outcome.code) == ("RCPT", 550), outcome
    assert leaked(own_domains_unknown.sink, marker) == []
