"""Confirm links on a real SQLite store: each works once, in whatever process uses it; an
expired, tampered or foreign token (another secret, a release link's) confirms nothing."""

from __future__ import annotations

import pytest

from typogate import Config, Guard
from typogate.gateway.confirmation import (
    Confirmations,
    InvalidConfirmLink,
    confirm_link,
    confirm_signer,
)
from typogate.gateway.quarantine import link_signer, release_link
from typogate.store import Store

SECRET = "a-long-enough-test-secret"
HOUR = 3600


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'typogate.db'}", writer=False)
    yield store
    store.close()


def _token(sender: str = "ann@example.org", *recipients: str) -> str:
    guard = Guard(Config.from_mapping({"domains": {"protected": ["army.mil"]}}))
    verdicts = [guard.evaluate(r, sender) for r in recipients or ("rita@arny.mil",)]
    link = confirm_link(confirm_signer(SECRET), sender, verdicts, "https://tg.example.org/")
    assert link.startswith("https://tg.example.org/confirm/")
    return link.rpartition("/")[2]


def test_a_link_confirms_once_in_every_process_on_the_store(store, tmp_path):
    meant: list[tuple[str, list[str]]] = []
    confirmations = Confirmations(store.holds, SECRET, lambda s, r: meant.append((s, list(r))))
    token = _token("ann@example.org", "rita@arny.mil", "jo@arny.mil")
    warning, used = confirmations.read(token, HOUR)
    assert (warning.sender, warning.domains, used) == ("ann@example.org", ["arny.mil"], False)
    assert [(q.recipient, q.suggestion) for q in warning.questioned] == [
        ("rita@arny.mil", "army.mil"),
        ("jo@arny.mil", "army.mil"),
    ]
    assert meant == []  # reading changes nothing
    assert confirmations.confirm(token, HOUR)[1] is True
    assert meant == [("ann@example.org", ["rita@arny.mil", "jo@arny.mil"])]
    # Another process on the same store: the link is used.
    other = Store(f"sqlite:///{tmp_path / 'typogate.db'}", writer=False)
    try:
        again = Confirmations(other.holds, SECRET, lambda s, r: meant.append((s, list(r))))
        assert again.read(token, HOUR)[1] is True
        assert again.confirm(token, HOUR)[1] is False
    finally:
        other.close()
    assert len(meant) == 1


def test_a_link_says_whether_the_message_went_to_the_addresses(store):
    # A removal's link (the milter took the addresses off) says so, and the page tells the
    # sender to send again; a link sent before links said it reads as a warning's.
    confirmations = Confirmations(store.holds, SECRET, lambda s, r: None)
    guard = Guard(Config.from_mapping({"domains": {"protected": ["army.mil"]}}))
    verdicts = [guard.evaluate("rita@arny.mil", "ann@example.org")]
    signer = confirm_signer(SECRET)
    removed = confirm_link(signer, "ann@example.org", verdicts, "https://tg", delivered=False)
    assert confirmations.read(removed.rpartition("/")[2], HOUR)[0].delivered is False
    assert confirmations.read(_token(), HOUR)[0].delivered is True
    before = signer.dumps(
        {"sender": "ann@example.org", "questioned": [["rita@arny.mil", "arny.mil", None, "x"]]}
        | {"nonce": "n1"}
    )
    assert confirmations.read(before, HOUR)[0].delivered is True


def test_an_expired_tampered_or_foreign_token_confirms_nothing(store):
    meant: list[str] = []
    confirmations = Confirmations(store.holds, SECRET, lambda s, r: meant.append(s))
    token = _token()
    with pytest.raises(InvalidConfirmLink, match="expired"):
        confirmations.confirm(token, -1)
    tampered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    foreign = Confirmations(store.holds, SECRET + "-elsewhere", lambda s, r: meant.append(s))
    release = release_link(link_signer(SECRET), "hold-1", "https://tg.example.org")
    for who, bad in ((confirmations, tampered), (foreign, token), (confirmations, release)):
        with pytest.raises(InvalidConfirmLink, match="not valid"):
            who.confirm(bad.rpartition("/")[2], HOUR)
    with pytest.raises(InvalidConfirmLink, match="not in use"):
        Confirmations(store.holds, None, lambda s, r: meant.append(s)).read(token, HOUR)
    assert meant == []


def test_a_confirmation_the_store_could_not_learn_can_be_made_again(store):
    """The link is marked used, then the relationship is written: when that second write
    fails (here SQLite refuses it, as a full disk would), the sender's word must not be
    lost behind a used link."""
    from sqlalchemy import text

    from typogate.vocabulary import Evidence

    def meant(sender: str, recipients) -> None:
        store.history.learn({(sender, "arny.mil"): 1}, evidence=Evidence.RELEASED)

    confirmations = Confirmations(store.holds, SECRET, meant)
    token = _token()
    refuse = (
        "CREATE TRIGGER refuse BEFORE INSERT ON correspondents "
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    with store.engine.begin() as connection:
        connection.execute(text(refuse))
    with pytest.raises(Exception, match="disk full"):
        confirmations.confirm(token, HOUR)
    assert confirmations.read(token, HOUR)[1] is False  # not used: it works again
    with store.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER refuse"))
    assert confirmations.confirm(token, HOUR)[1] is True
    assert store.history.correspondents("ann@example.org")[0].released == 1
