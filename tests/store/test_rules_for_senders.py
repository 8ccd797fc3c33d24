"""A rule for some senders, kept in the store: read back with its senders, and a migration
either way that never turns it into a rule for everyone."""

from __future__ import annotations

import pytest
from revisions import before, take_back
from sqlalchemy import text

from typogate.config import Rule
from typogate.store import Store

THEIRS = Rule.model_validate(
    {"domain": "cmail.net", "action": "allow", "senders": ["Ann@Example.org", "mali.example.org"]}
)
EVERYONE = Rule.model_validate({"suffix": "ml", "action": "reject"})


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    """A new store's address: a SQLite file, or a PostgreSQL server of the test's own."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres").url
    return f"sqlite:///{tmp_path / 'typogate.db'}"


def targets(store: Store) -> list[tuple[str, list[str]]]:
    return [(stored.rule.target, stored.rule.senders) for stored in store.rules.all()]


def test_a_rule_for_some_senders_is_read_back_theirs(url):
    store = Store(url)
    try:
        store.rules.save(THEIRS, "admin")
        store.rules.save(EVERYONE, "admin")
        assert targets(store) == [
            ("domain:cmail.net", ["ann@example.org", "mali.example.org"]),
            ("suffix:ml", []),
        ]
        assert store.rules.in_force([]) == [THEIRS, EVERYONE]
    finally:
        store.close()


def test_rules_stored_before_are_for_everyone_and_a_downgrade_drops_those_for_some(url):
    store = Store(url)
    try:
        take_back(store, before("0009"))
        with store.engine.begin() as connection:  # a rule as 0008 stored it
            connection.execute(
                text(
                    "INSERT INTO rules (suffix, action, exceptions, author, updated) "
                    "VALUES ('ml', 'reject', '[]', 'admin', CURRENT_TIMESTAMP)"
                )
            )
        store.migrate()
        assert targets(store) == [("suffix:ml", [])]
        store.rules.save(THEIRS, "admin")
        take_back(store, before("0009"))
        with store.engine.connect() as connection:
            left = connection.execute(text("SELECT suffix, domain FROM rules")).all()
        assert left == [("ml", None)]  # not cmail.net, which 0008 would allow for everyone
    finally:
        store.close()
