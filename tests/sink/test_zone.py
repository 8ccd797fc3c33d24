"""The records ``typogate sink records`` prints load in a real DNS server (NSD) and answer
as the policy says: a null MX (RFC 7505) where no mail should go, an MX to the sink where
the sink should explain, and a suffix's wildcard that leaves registered names alone."""

from __future__ import annotations

import json
import os
import subprocess

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from dns_server import NSD, DnsServer
from mta import TYPOGATE
from sink_process import CONFIG

pytestmark = pytest.mark.skipif(not os.path.exists(NSD), reason="make test installs nsd")

SERVE = """
[[sink.serve]]
domain = "realshop.ml"
choice = "forward"
forward_to = "mx.realshop.example:25"
"""


def mx(server: DnsServer, name: str) -> tuple[int, list[str]]:
    """The server's answer to ``name MX``: its rcode and the MX records as text."""
    query = dns.message.make_query(name, dns.rdatatype.MX)
    answer = dns.query.udp(query, "127.0.0.1", port=server.port, timeout=5)
    found = [
        r.to_text() for rrset in answer.answer for r in rrset if rrset.rdtype == dns.rdatatype.MX
    ]
    return answer.rcode(), found


def test_records_load_in_a_real_dns_server_and_answer_as_the_policy_says(tmp_path):
    config = tmp_path / "typogate.toml"
    config.write_text(CONFIG.format(serve=SERVE, extra="", limits=""))
    done = subprocess.run(
        [TYPOGATE, "sink", "records", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    as_json = subprocess.run(
        [TYPOGATE, "sink", "records", "--json", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert {(r["owner"], r["type"], r["data"]) for r in records} == {
        ("*.ml.", "MX", "10 sink.test.example."),
        ("navy.ml.", "MX", "0 ."),
        ("navy.ml.", "TXT", '"v=spf1 -all"'),
        ("realshop.ml.", "MX", "10 sink.test.example."),
    }
    # The .ml operator's zone: the printed lines as they are, and one registered domain
    # that has its own name servers (a delegation).
    zone = done.stdout + "registered.ml. IN NS ns.registered.example.\n"
    with DnsServer({"ml": zone}) as server:
        assert mx(server, "navy.ml.") == (dns.rcode.NOERROR, ["0 ."])
        assert mx(server, "army.ml.") == (dns.rcode.NOERROR, ["10 sink.test.example."])
        assert mx(server, "mail.arrny.ml.") == (dns.rcode.NOERROR, ["10 sink.test.example."])
        assert mx(server, "realshop.ml.") == (dns.rcode.NOERROR, ["10 sink.test.example."])
        # A registered name answers for itself: the wildcard gives it nothing.
        assert mx(server, "registered.ml.") == (dns.rcode.NOERROR, [])
