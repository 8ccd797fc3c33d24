"""The Guard's learned relationships stay bounded whatever senders and domains the mail
claims: a party longer than an address counts for the organisation only, and past
limits.learned_ties no new relationship is kept, while the kept ones go on counting."""

from __future__ import annotations

import logging

from typogate.config import Config
from typogate.policy import Guard
from typogate.policy.relationships import ORGANISATION, Relationships, levels
from typogate.vocabulary import Evidence


def test_a_padded_sender_is_no_party_of_ours():
    assert levels("alice@example.org") == [ORGANISATION, "example.org", "alice@example.org"]
    assert levels("alice@example.org" + " " * 4000) == [ORGANISATION]


def test_relationships_stop_growing_at_the_limit(caplog):
    relationships = Relationships(half_life=86400.0, max_ties=100)
    relationships.observe("alice@example.org", "partner.example", Evidence.SENT)
    with caplog.at_level(logging.WARNING):
        for n in range(1000):
            relationships.observe(f"s{n}@made-up{n}.example", f"d{n}.example", Evidence.SENT)
    assert len(relationships) == 100
    assert caplog.text.count("limits.learned_ties") == 1  # said once
    # What was kept goes on counting.
    relationships.observe("alice@example.org", "partner.example", Evidence.SENT)
    assert relationships.tie("alice@example.org", "partner.example").sent == 2


def test_the_guard_takes_its_limit_from_the_configuration():
    guard = Guard(Config.from_mapping({"limits": {"learned_ties": 1000}}))
    for n in range(2000):
        guard.observe(f"s{n}@example.org", f"d{n}.example", Evidence.SENT)
    assert len(guard.relationships) == 1000
