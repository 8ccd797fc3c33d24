"""What the gatekeeper teaches while mail flows: a believed sender's delivered mail (allowed, or
warned about), mail from outside to our own domains; never a rejected recipient, never an
envelope claim alone."""

from __future__ import annotations

from typogate import Config, Guard
from typogate.gateway.envelope import Envelope
from typogate.gateway.gatekeeper import Gatekeeper
from typogate.store import Store
from typogate.vocabulary import Action, Adapter, Evidence


def _gatekeeper(tmp_path, **settings) -> tuple[Gatekeeper, Store]:
    config = Config.from_mapping(
        {
            "domains": {"protected": ["army.mil", "example.org"]},
            "gateway": {"own_domains": ["example.org"], "trusted_networks": ["192.0.2.0/24"]},
            **settings,
        }
    )
    store = Store(f"sqlite:///{tmp_path / 'typogate.db'}")
    return Gatekeeper(Guard(config), Adapter.POLICY, journal=store), store


def _learned(store: Store) -> dict[tuple[str, str], tuple[int, int]]:
    store.flush()
    return {
        (r.sender, r.recipient_domain): (r.count, r.received) for r in store.history.relationships()
    }


def test_a_believed_senders_allowed_mail_teaches_at_once_and_in_the_store(tmp_path):
    gatekeeper, store = _gatekeeper(tmp_path)
    signed_in = Envelope(sender="alice@example.org", sasl_username="alice")
    for _ in range(3):
        gatekeeper.decide("orders@northwind-traders.com", signed_in)
    twin = gatekeeper.decide("orders@northwind-tradres.com", signed_in)
    assert twin.verdict.suggestion == "northwind-traders.com"  # the Guard knew at once
    gatekeeper.decide("bob@army.ml", signed_in)  # rejected: teaches nothing
    learned = _learned(store)
    store.close()
    assert learned[("alice@example.org", "northwind-traders.com")] == (3, 0)
    assert learned[("*", "northwind-traders.com")] == (3, 0)
    assert not any(domain == "army.ml" for _, domain in learned)


def test_an_envelope_claim_alone_teaches_nothing(tmp_path):
    gatekeeper, store = _gatekeeper(tmp_path)
    forged = Envelope(sender="alice@example.org", client_address="203.0.113.9")
    for _ in range(5):
        gatekeeper.decide("orders@northwind-traders.com", forged)
    assert not gatekeeper.decide("orders@northwind-tradres.com", forged).verdict.is_alert
    learned = _learned(store)
    store.close()
    assert learned == {}


def test_mail_from_outside_to_our_own_domain_is_mail_received(tmp_path):
    gatekeeper, store = _gatekeeper(tmp_path)
    inbound = Envelope(sender="sales@acme-corp.com", client_address="203.0.113.9")
    gatekeeper.decide("ops@example.org", inbound)
    gatekeeper.decide("ops@example.org", inbound)
    learned = _learned(store)
    store.close()
    assert learned[("ops@example.org", "acme-corp.com")] == (0, 2)
    assert learned[("*", "acme-corp.com")] == (0, 2)


def test_a_look_alikes_owner_writing_to_us_unasked_never_opens_the_way(tmp_path):
    # The operator of army.ml sends us mail: without this rule, two messages made army.ml
    # "proven" for the whole organisation and every later slip to it was let through.
    gatekeeper, store = _gatekeeper(tmp_path)
    squatter = Envelope(sender="info@army.ml", client_address="203.0.113.9")
    for user in ("ops", "alice", "bob", "carol"):
        gatekeeper.decide(f"{user}@example.org", squatter)
    signed_in = Envelope(sender="alice@example.org", sasl_username="alice")
    assert gatekeeper.decide("general@army.ml", signed_in).verdict.is_alert
    learned = _learned(store)
    store.close()
    assert not any(domain == "army.ml" for _, domain in learned)


def test_a_look_alike_answering_the_one_who_wrote_to_it_is_a_reply(tmp_path):
    gatekeeper, store = _gatekeeper(tmp_path)
    gatekeeper.guard.observe("alice@example.org", "army.ml", Evidence.RELEASED)
    gatekeeper.decide("alice@example.org", Envelope(sender="hq@army.ml"))
    learned = _learned(store)
    store.close()
    assert learned[("alice@example.org", "army.ml")] == (0, 1)


def test_an_autoresponder_answering_a_release_opens_the_way_for_nobody_else(tmp_path):
    # Alice releases one held message to army.ml; its catch-all answers twice. For Alice,
    # army.ml is a correspondent now; for Bob, and after a restart, it is still a slip.
    gatekeeper, store = _gatekeeper(tmp_path)
    gatekeeper.guard.observe("alice@example.org", "army.ml", Evidence.RELEASED)
    for _ in range(2):
        gatekeeper.decide("alice@example.org", Envelope(sender="auto-reply@army.ml"))
    alice = Envelope(sender="alice@example.org", sasl_username="alice")
    bob = Envelope(sender="bob@example.org", sasl_username="bob")
    assert not gatekeeper.decide("general@army.ml", alice).verdict.is_alert
    assert gatekeeper.decide("general@army.ml", bob).verdict.suggestion == "army.mil"
    store.flush()
    restarted = Guard(gatekeeper.guard.config)
    restarted.learn_relationships(store.history.relationships())
    store.close()
    assert restarted.evaluate("general@army.ml", "bob@example.org").is_alert


def test_a_warned_message_is_delivered_so_its_answer_is_a_reply(tmp_path):
    # armi.ml is only a possible slip of army.mil: Alice's message to it goes out with a
    # warning header. It went out, so when armi.ml answers her, that is a reply, and for
    # her armi.ml is a correspondent; before, the warned message taught nothing and the
    # answer counted as mail nobody asked for. For Bob, armi.ml is still a slip.
    gatekeeper, store = _gatekeeper(tmp_path)
    alice = Envelope(sender="alice@example.org", sasl_username="alice")
    bob = Envelope(sender="bob@example.org", sasl_username="bob")
    assert gatekeeper.decide("base@armi.ml", alice).action is Action.WARN
    gatekeeper.decide("alice@example.org", Envelope(sender="base@armi.ml"))
    assert gatekeeper.decide("base@armi.ml", alice).verdict.reason == "allowed.relationship"
    assert gatekeeper.decide("base@armi.ml", bob).action is Action.WARN
    learned = _learned(store)
    store.close()
    assert learned[("alice@example.org", "armi.ml")] == (2, 1)  # warned, then allowed
    assert ("bob@example.org", "armi.ml") in learned  # delivered too: evidence, not a verdict


def test_reading_the_store_again_never_takes_back_what_was_heard_since(tmp_path):
    # Every learning.refresh_seconds the store watcher reads back what changed in the last
    # minute (Guard.learn_relationships), as the writer stored it, up to ten seconds late.
    # The row of Alice's warned message said "no answer": read back after armi.ml answered
    # her, it set the answer back to none, and her next message was warned about again
    # until the writer caught up.
    gatekeeper, store = _gatekeeper(tmp_path)
    alice = Envelope(sender="alice@example.org", sasl_username="alice")
    assert gatekeeper.decide("base@armi.ml", alice).action is Action.WARN
    store.flush()  # the writer stored the delivery
    stored_before_the_answer = store.history.relationships()
    gatekeeper.decide("alice@example.org", Envelope(sender="base@armi.ml"))
    gatekeeper.guard.learn_relationships(stored_before_the_answer)  # read back late
    again = gatekeeper.decide("base@armi.ml", alice)
    store.close()
    assert again.verdict.reason == "allowed.relationship", again.verdict


def test_a_saved_slip_learned_first_is_taken_back_in_every_gateway_when_the_real_one_answers(
    tmp_path,
):
    # Alice's saved slip went out three times before she first wrote to the real address:
    # in the mail's order it became a correspondent, and the real one its slip. Her warned
    # message to the real one is answered; this gateway, and another on the same store,
    # take the slip back.
    # An admin who only warns: the mail goes out.
    gatekeeper, store = _gatekeeper(tmp_path, actions={"typo": "warn"})
    other = Guard(gatekeeper.guard.config)  # a second gateway, reading what the first stores
    alice = Envelope(sender="alice@example.org", sasl_username="alice")
    bob = Envelope(sender="bob@example.org", sasl_username="bob")
    slip, real = "northwind-tradres.com", "northwind-traders.com"
    for _ in range(3):
        gatekeeper.decide(f"orders@{slip}", alice)
    store.flush()
    other.learn_relationships(store.history.relationships())
    assert other.evaluate(f"x@{slip}").reason == "allowed.known"
    assert gatekeeper.decide(f"orders@{real}", alice).action is Action.WARN
    gatekeeper.decide("alice@example.org", Envelope(sender=f"orders@{real}"))  # the answer
    assert gatekeeper.decide(f"orders@{slip}", alice).verdict.suggestion == real
    assert not gatekeeper.decide(f"orders@{real}", bob).verdict.is_alert
    store.flush()
    other.learn_relationships(store.history.relationships())
    store.close()
    assert other.evaluate(f"x@{slip}").reason != "allowed.known"
    assert not other.evaluate(f"x@{real}", "bob@example.org").is_alert


# The proxy decides at RCPT and learns only once the next hop took the message: a message
# refused at DATA (a recipient its To header shows as a look-alike) must teach nothing.
def test_decisions_taught_nothing_until_the_message_went_out(tmp_path):
    gatekeeper, store = _gatekeeper(tmp_path)
    signed_in = Envelope(sender="alice@example.org", sasl_username="alice")
    decided = [
        gatekeeper.decide("orders@northwind-traders.com", signed_in, learn=False) for _ in range(3)
    ]
    assert not gatekeeper.decide("orders@northwind-tradres.com", signed_in).verdict.is_alert
    gatekeeper.delivered(decided, signed_in)
    twin = gatekeeper.decide("orders@northwind-tradres.com", signed_in)
    assert twin.verdict.suggestion == "northwind-traders.com"
    learned = _learned(store)
    store.close()
    assert learned[("alice@example.org", "northwind-traders.com")] == (3, 0)


# Beside the milter, the policy service answers RCPT before any header comes, and the mail
# it passes teaches; the milter then removes a recipient its To header shows as
# ceo@army.mil. The policy service's third delivery made evil.com a correspondent, and the
# milter let that third reply through.
def test_replies_the_milter_stops_never_open_the_way_for_the_next(tmp_path):
    gatekeeper, store = _gatekeeper(tmp_path)
    at_rcpt = Envelope(sender="alice@example.org", sasl_username="alice")
    at_end = Envelope(
        sender="alice@example.org", sasl_username="alice", shown=(("ceo@evil.com", "ceo@army.mil"),)
    )
    for reply in range(4):
        assert gatekeeper.decide("ceo@evil.com", at_rcpt).action is Action.ALLOW
        assert gatekeeper.decide("ceo@evil.com", at_end).action is Action.REJECT, reply
    store.close()
