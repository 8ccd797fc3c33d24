"""Mail states read from a real DNS server: every state, SPF and DMARC, and no answer."""

from __future__ import annotations

import asyncio

from dns_server import DnsServer
from ports import free_port

from typogate.monitor import Lookup, MailFacts, MailState, Nameserver, mail_states


def states(nameserver: str, domains: list[str], **lookup: float) -> dict[str, MailFacts]:
    servers = (Nameserver.parse(nameserver),)
    return asyncio.run(mail_states(domains, Lookup(servers, **lookup)))  # type: ignore[arg-type]


def test_every_state_from_the_zone(planted):
    found = states(
        planted.nameserver,
        [
            "army.ml",
            "arrny.mil",
            "amry.mil",
            "arny.mil",
            "armymil.com",
            "xn--rmy-5cd.mil",
            "army.co",
        ],
    )
    assert found["army.ml"] == MailFacts(MailState.MX, ("mail.army.ml", "mx2.army.ml"), True, True)
    assert found["arrny.mil"] == MailFacts(MailState.NULL_MX)
    assert found["amry.mil"] == MailFacts(MailState.NO_MAIL)
    assert found["arny.mil"] == MailFacts(MailState.NO_MAIL)  # "v=spf10" is not SPF
    assert found["armymil.com"] == MailFacts(MailState.A_ONLY)
    assert found["xn--rmy-5cd.mil"] == MailFacts(MailState.A_ONLY)  # AAAA only
    assert found["army.co"] == MailFacts(MailState.NXDOMAIN)
    assert [s for s in MailState if s.accepts_mail] == [MailState.MX, MailState.A_ONLY]


def test_many_names_in_one_sweep_lose_none(planted):
    # Thousands of NXDOMAIN names and the planted ones among them: every name is settled,
    # and none is mistaken for another (answers are matched by id and question).
    names = [f"absent{n}.example{n % 13}.ml" for n in range(3000)]
    names[1500:1500] = ["army.ml", "amry.mil"]
    found = states(planted.nameserver, names, concurrency=512)
    assert len(found) == len(names)
    assert found["army.ml"].state is MailState.MX and found["amry.mil"].state is MailState.NO_MAIL
    assert sum(f.state is MailState.NXDOMAIN for f in found.values()) == 3000


def test_a_server_that_never_answers_is_unresolved_not_nxdomain():
    # Nothing listens on this port: no answer is no evidence that the name does not exist.
    found = states(f"127.0.0.1:{free_port()}", ["army.ml", "amry.mil"], timeout=0.2, tries=2)
    assert {f.state for f in found.values()} == {MailState.UNRESOLVED}


def test_a_second_nameserver_answers_when_the_first_is_dead(planted):
    servers = (Nameserver.parse(f"127.0.0.1:{free_port()}"), Nameserver.parse(planted.nameserver))
    found = asyncio.run(mail_states(["army.ml", "army.co"], Lookup(servers, timeout=0.3, tries=3)))
    assert found["army.ml"].state is MailState.MX
    assert found["army.co"].state is MailState.NXDOMAIN


def test_nameserver_forms():
    assert str(Nameserver.parse("192.0.2.1")) == "192.0.2.1:53"
    assert Nameserver.parse("192.0.2.1:5353").port == 5353
    assert Nameserver.parse("[2001:db8::1]:53").host == "2001:db8::1"
    assert Nameserver.parse("2001:db8::1").port == 53
    for bad in ("dns.example", "192.0.2.1:0", "192.0.2.1:x", "[2001:db8::1]x"):
        try:
            Nameserver.parse(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was taken")


def test_aliases_and_truncated_answers_go_through_the_resolver():
    # An alias is followed and a truncated answer is asked again over TCP: both are left to
    # dnspython's resolver by the sweep, which reads only plain answers.
    long_text = " ".join(f'"{"x" * 200}"' for _ in range(4))
    zones = {
        "army.ml": "us CNAME relay.army.ml.\nrelay MX 10 mx.army.ml.\n",
        "arny.mil": f'@ TXT "v=spf1 -all"\n@ TXT {long_text}\n',
    }
    with DnsServer(zones) as server:
        found = states(server.nameserver, ["us.army.ml", "arny.mil"])
    assert found["us.army.ml"] == MailFacts(MailState.MX, ("mx.army.ml",))
    assert found["arny.mil"] == MailFacts(MailState.NO_MAIL, spf=True)
