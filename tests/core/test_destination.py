"""Where mail to an address goes (read_destination), and the Guard judging that destination
whatever the local part looks like. What Postfix 3.7 really does with each spelling is
checked through a real Postfix in tests/gateway/test_spellings.py; these are the readings."""

from __future__ import annotations

import pytest

from typogate import Action, Config, Guard, InvalidAddress
from typogate.domains import Route, display_name, display_names, host_name, read_destination

OWN = frozenset({"mail.example.org", "localhost", "[192.0.2.1]"})


@pytest.mark.parametrize(
    ("address", "local", "host"),
    [
        ("john@army.ml", "john", "army.ml"),
        ("<John@ARMY.ML>", "John", "army.ml"),
        ('"john doe"@army.ml', "john doe", "army.ml"),
        ("john doe@army.ml", "john doe", "army.ml"),  # the unquoted form Postfix hands on
        ('"j@x"@army.ml', "j@x", "army.ml"),
        ("j@x@army.ml", "j@x", "army.ml"),
        ('"a,b"@army.ml', "a,b", "army.ml"),
        ('".john"@army.ml', ".john", "army.ml"),
        ("j" * 250 + "@army.ml", "j" * 250, "army.ml"),
        ("john\u200b@army.ml", "john\u200b", "army.ml"),
        ("john@army\u200b.ml", "john", "army.ml"),  # UTS #46 ignores U+200B
        ("john@ar\u00admy.ml", "john", "army.ml"),  # and U+00AD
        ("john@army.ml\ufeff", "john", "army.ml"),  # and U+FEFF
        ("john@ａｒｍｙ.ml", "john", "army.ml"),  # full width
        ("john@army\u3002ml", "john", "army.ml"),  # ideographic full stop
        ("john@army\uff0eml", "john", "army.ml"),  # full-width full stop
        ("john@army.ml.", "john", "army.ml"),
        ("john@army.ml (a comment)", "john", "army.ml"),  # Postfix drops comments
        ('john@"army".ml', "john", "army.ml"),
        ("<@relay.example:john@army.ml>", "john", "army.ml"),  # a source route is dropped
    ],
)
def test_the_destination_is_the_mapped_host_after_the_last_at_sign(address, local, host):
    destination = read_destination(address, OWN)
    assert (destination.local, destination.host, destination.route) == (
        local,
        host,
        Route.AT_SIGN,
    )
    assert destination.domain is not None and destination.domain.ascii == host


@pytest.mark.parametrize(
    ("address", "delivered", "route"),
    [
        ("john%army.ml@mail.example.org", "john@army.ml", Route.PERCENT_HACK),
        ("army.ml!john@mail.example.org", "john@army.ml", Route.BANG_PATH),
        ("john%army.ml@MAIL.EXAMPLE.ORG.", "john@army.ml", Route.PERCENT_HACK),
        ("john%army.ml@[192.0.2.1]", "john@army.ml", Route.PERCENT_HACK),
        ('"john%army.ml"@localhost', "john@army.ml", Route.PERCENT_HACK),
        ('"john@army.ml"@localhost', "john@army.ml", Route.AT_SIGN),
        # Postfix 3.7 (checked through the real one): the last % and the first ! count,
        # a bang path before the percent hack, and own hosts are stripped again and again.
        ("a%b%army.ml@localhost", "a%b@army.ml", Route.PERCENT_HACK),
        ("john%army.ml%localhost@localhost", "john@army.ml", Route.PERCENT_HACK),
        ("localhost!army.ml!john@localhost", "john@army.ml", Route.BANG_PATH),
        ("army.ml!john%x.com@localhost", "john%x.com@army.ml", Route.BANG_PATH),
        ("%army.ml@localhost", "@army.ml", Route.PERCENT_HACK),
        ("john%army.ml", "john@army.ml", Route.PERCENT_HACK),  # unqualified: at Postfix itself
    ],
)
def test_the_percent_hack_and_bang_path_route_on_from_an_own_host(address, delivered, route):
    destination = read_destination(address, OWN)
    assert (destination.address, destination.route) == (delivered, route)


def test_the_at_host_is_the_destination_when_it_is_not_the_mtas_own():
    destination = read_destination("john%army.ml@example.net", OWN)
    assert (destination.host, destination.alternatives) == ("example.net", ())


def test_with_own_domains_unknown_every_host_on_the_route_is_a_destination():
    destination = read_destination("john%army.ml@mail.example.org", None)
    hosts = [d.host for d in (destination, *destination.alternatives)]
    assert hosts == ["mail.example.org", "army.ml"]


@pytest.mark.parametrize(
    ("address", "host", "route"),
    [
        ("john@mail.example.org", "mail.example.org", Route.OWN_HOST),
        ("postmaster", "", Route.OWN_HOST),  # Postfix qualifies it with its own origin
        ("john@[198.51.100.7]", "[198.51.100.7]", Route.AT_SIGN),
        ("john@[IPv6:2001:db8::7]", "[ipv6:2001:db8::7]", Route.AT_SIGN),
        ("john@[x-tag:anything]", "[x-tag:anything]", Route.AT_SIGN),  # RFC 5321's general form
        ("john@gmail", "gmail", Route.AT_SIGN),
        ("john@co.uk", "co.uk", Route.AT_SIGN),
    ],
)
def test_no_domain_name_to_judge(address, host, route):
    destination = read_destination(address, OWN)
    assert (destination.host, destination.domain, destination.route) == (host, None, route)


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("", "empty"),
        ("john@", "nothing after an @-sign"),
        ("bad@@localhost", "nothing after an @-sign"),  # was: "needs an @-sign"
        ("!john@localhost", "nothing before a !"),
        ("john@army.ml\u200e", "not a domain name"),  # U+200E is disallowed, not ignored
        ("john@army\ufffd.ml", "not a domain name"),  # undecodable bytes
        ("john@[gmail.com:25]", "invalid characters"),  # neither a literal nor a name
        ("john@x_y.army.ml", "invalid"),
        ("john@-army.ml", "hyphen"),
        ("john@" + "a" * 64 + ".ml", "characters"),
        ("%" * 100 + "@localhost", "nothing after a %"),
        ("localhost!" * 40 + "john@localhost", "more than"),
    ],
)
def test_an_address_that_cannot_be_read_raises_a_clear_error(address, words):
    with pytest.raises(InvalidAddress) as raised:
        read_destination(address, OWN)
    assert words in raised.value.reason


def test_host_name_maps_as_postfix_does():
    assert host_name("ＭＡＩＬ。Example.org.") == "mail.example.org"
    assert host_name("[192.0.2.1]") == "[192.0.2.1]"
    with pytest.raises(InvalidAddress):
        host_name("bad\u202ehost")


@pytest.fixture(scope="module")
def guard():
    config = Config.from_mapping(
        {
            "domains": {"protected": ["army.mil", "gmail.com", "example.org"]},
            "gateway": {"own_domains": ["mail.example.org", "localhost"]},
        }
    )
    return Guard(config)


@pytest.mark.parametrize(
    "address",
    [
        '"john doe"@army.ml',
        "john doe@army.ml",
        "j@x@army.ml",
        "j" * 250 + "@army.ml",
        "john\u202e@army.ml",
        "john@army\u200b.ml",
        "john%army.ml@mail.example.org",
        "army.ml!john@localhost",
        '"john@army.ml"@localhost',
        "john@army.ml,x@example.org",  # a list: Postfix's reader takes one part
    ],
)
def test_the_guard_judges_the_destination_whatever_the_local_part(guard, address):
    verdict = guard.evaluate(address)
    assert verdict.action is Action.REJECT
    assert verdict.domain == "army.ml" and verdict.suggestion == "army.mil"


def test_the_verdict_names_the_address_as_delivered(guard):
    verdict = guard.evaluate("john%army.ml@mail.example.org")
    assert verdict.recipient == "john@army.ml"
    assert verdict.suggested_recipient == "john@army.mil"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ('"john doe"@army.ml', '"john doe"@army.mil'),
        ("john doe@army.ml", '"john doe"@army.mil'),  # as Postfix hands it on
        ('"j@x"@army.ml', '"j@x"@army.mil'),
        ('".john"@army.ml', '".john"@army.mil'),
        ('"jo..hn"@army.ml', '"jo..hn"@army.mil'),
        ('"a\\"b\\\\c"@army.ml', '"a\\"b\\\\c"@army.mil'),
        ('"john"@army.ml', "john@army.mil"),  # quotes it did not need are not kept
        ("john.doe+tag@army.ml", "john.doe+tag@army.mil"),
        ("jöhn@army.ml", "jöhn@army.mil"),  # RFC 6531: UTF-8 is a dot-string's too
    ],
)
def test_the_suggested_address_is_one_the_sender_can_write(guard, typed, meant):
    # The verdict reads the local part unquoted, as Postfix hands it on; the address it
    # suggests is for a person to write again, so it must read back as the same mailbox.
    verdict = guard.evaluate(typed)
    assert verdict.suggested_recipient == meant
    again = read_destination(meant)
    assert (again.local, again.host) == (read_destination(typed).local, "army.mil")


@pytest.mark.parametrize(
    "typed",
    ["army\u200b.ml", "ar\u00admy.ml", "army.ml\ufeff", "army\u2060.ml", "\uff41rmy.ml"],
)
def test_a_bare_domain_is_judged_as_postfix_maps_it(guard, typed):
    # A Postfix log names the domain as typed; mail to it went to army.ml. The audit asks
    # about the bare domain, and must hear what the gateway says of the address.
    verdict = guard.judge_domain(typed)
    assert (verdict.domain, verdict.suggestion) == ("army.ml", "army.mil")
    assert verdict.action is guard.evaluate(f"john@{typed}").action is Action.REJECT


# A name in brackets is no address literal: sendmail delivers to the host it names, without
# its MX, and Postfix refuses it (501, checked through the real one in test_spellings.py).
# It was allowed as an address literal, whatever the name.
def test_a_name_in_brackets_is_judged_as_the_name(guard):
    destination = read_destination("john@[gmial.com]", OWN)
    assert destination.host == "gmial.com" and destination.domain is not None
    verdict = guard.evaluate("john@[gmial.com]")
    assert (verdict.action, verdict.suggestion) == (Action.REJECT, "gmail.com")
    assert guard.evaluate("john@[ army.mil ]").reason == "allowed.protected"


def test_mail_that_stays_on_the_mta_or_has_no_domain_name_is_allowed(guard):
    assert guard.evaluate("john@localhost").reason == "allowed.own_host"
    assert guard.evaluate("postmaster").reason == "allowed.own_host"
    assert guard.evaluate("john@[198.51.100.7]").reason == "allowed.no_domain_name"
    assert guard.evaluate("john%army.mil@localhost").reason == "allowed.protected"


def test_with_own_domains_unknown_the_strictest_destination_decides():
    guard = Guard(Config(domains={"protected": ["army.mil"]}))
    assert guard.evaluate("john%army.ml@mail.example.org").domain == "army.ml"
    assert guard.evaluate("john%army.ml@mail.example.org").is_alert
    assert guard.evaluate('"john%army.mil"@army.ml').is_alert  # either way a typo is judged
    assert not guard.evaluate("john%army.mil@example.org").is_alert


def test_a_bad_own_domain_is_a_configuration_error():
    from typogate import ConfigError

    with pytest.raises(ConfigError, match="gateway.own_domains"):
        Guard(Config.from_mapping({"gateway": {"own_domains": ["bad\u202ehost"]}}))


# How a To or Cc header shows each recipient: the milter reads it to tell a recipient shown
# under another address ("ceo@army.mil" <ceo@evil.com>) from one shown as itself.
@pytest.mark.parametrize(
    ("header", "mailboxes"),
    [
        (
            '"john@army.mil" <john@evil.com>, jane@army.mil',
            [("john@army.mil", "john@evil.com"), ("", "jane@army.mil")],
        ),
        ("=?utf-8?q?john=40army=2Emil?= <john@evil.com>", [("john@army.mil", "john@evil.com")]),
        (
            '"Doe, Jane" <jane@army.ml>, (a, comment) bob@x.org',
            [("Doe, Jane", "jane@army.ml"), ("", "(a, comment) bob@x.org")],
        ),
        ('team: "a@army.mil" <a@evil.com>, b@c.d;', [("a@army.mil", "a@evil.com"), ("", "b@c.d")]),
        ('"x\\"y@army.mil" <q@evil.com>', [('x"y@army.mil', "q@evil.com")]),
        ("John (john@army.mil) <john@evil.com>", [("John (john@army.mil)", "john@evil.com")]),
        (
            "=?no-such-charset?q?a=40army.mil?= <a@evil.com>",
            [("=?no-such-charset?q?a=40army.mil?=", "a@evil.com")],
        ),
        ("undisclosed-recipients:;", []),
    ],
)
def test_a_header_shows_each_recipient_under_its_display_name(header, mailboxes):
    assert display_names(header) == mailboxes


# A header is the message's, and a hostile one is read in one pass: the standard library's
# header parser, which the first version used, ran out of stack on nested comments (and
# took 94 s on 100,000 quotes, bench/headers.py).
@pytest.mark.parametrize(
    "header",
    ["(" * 50_000 + "a@b" + ")" * 50_000, '"' * 100_000 + "@", "<" * 50_000 + "a@b.c"],
)
def test_a_hostile_header_is_read_without_running_out_of_stack(header):
    assert all("@" not in name for name, _ in display_names(header))
    assert len(display_name("=?utf-8?q?" + "a" * 100_000 + "?=")) <= 4096
