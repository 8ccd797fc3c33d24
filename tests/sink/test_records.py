"""What one record keeps: the keyed hash instead of the local part, the address only when
the operator asked for it, the client's network for the reports."""

from __future__ import annotations

import hashlib
import hmac

from typogate.config import Served
from typogate.gateway.sink.decision import SinkPolicy
from typogate.gateway.sink.records import SinkRecorder, client_range, sender_domain
from typogate.policy import Config, Guard

POLICY = SinkPolicy(Guard(Config(domains={"protected": ["army.mil"]})), [Served(suffix="ml")])


def test_the_local_part_is_kept_only_as_a_keyed_hash():
    answer = POLICY.answer("John.Smith@army.ml")
    record = SinkRecorder(b"key").record(
        answer,
        client_address="2001:db8:7:1::25",
        helo="mx.sender.example",
        sender="a@Sender.Example",
    )
    expected = hmac.new(b"key", b"john.smith", hashlib.sha256).hexdigest()
    assert record.local_hash == expected  # case folded: John and john are one recipient
    assert record.local_hash != SinkRecorder(b"other key").local_hash("john.smith")
    assert record.recipient is None
    assert "John.Smith" not in repr(record) and "john.smith" not in repr(record).lower()
    assert record.reply == (
        "550 5.1.2 <*@army.ml>: army.ml is not army.mil. Did you mean *@army.mil? "
        "Nothing was delivered or kept."
    )
    assert (record.client_range, record.sender_domain) == ("2001:db8:7::/48", "sender.example")
    assert (record.lookalike, record.intended, record.outcome.value) == (
        "army.ml",
        "army.mil",
        "hint",
    )


def test_addresses_are_kept_only_when_configured():
    answer = POLICY.answer("john@army.ml")
    record = SinkRecorder(b"key", keep_addresses=True).record(
        answer, client_address="192.0.2.9", helo="h", sender=""
    )
    assert record.recipient == "john@army.ml"
    assert record.reply.startswith("550 5.1.2 <john@army.ml>:")
    assert (record.client_range, record.sender_domain) == ("192.0.2.0/24", "")


def test_client_ranges_and_sender_domains():
    assert client_range("::ffff:198.51.100.77") == "198.51.100.0/24"
    assert client_range("not an address") == "not an address"
    assert sender_domain("<Bounce@Lists.Example>") == "lists.example"
    assert sender_domain("<>") == ""
