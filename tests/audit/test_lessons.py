"""What a Postfix log teaches: mail from a likely slip counts only as a reply."""

from __future__ import annotations

from postfix_lines import inbound_line, outbound_line

from typogate.audit import lessons


def _slip(domain: str) -> bool:
    return domain == "army.ml"


def test_a_reply_counts_and_mail_nobody_asked_for_does_not():
    log = outbound_line(1, sender="ops@example.org", recipient="c@army.ml")
    log += inbound_line(2, sender="c@army.ml", recipient="ops@example.org")
    log += inbound_line(3, sender="c@army.ml", recipient="sue@example.org")
    log += inbound_line(4, sender="b@partner.example", recipient="sue@example.org")
    learned = lessons.read(log.encode())
    received, unasked = learned.received(_slip, learned.delivered())
    assert received[("ops@example.org", "army.ml")] == 1
    assert received[("*", "army.ml")] == 1
    assert received[("sue@example.org", "partner.example")] == 1
    assert unasked == {"army.ml": 1}


def test_a_recipient_too_long_to_be_ours_is_answered_by_nobody():
    # Kept for the organisation only (no party of ours is that long): the organisation's
    # own deliveries to army.ml must not make its mail a reply, nor be counted twice.
    log = outbound_line(1, sender="ops@example.org", recipient="c@army.ml")
    log += inbound_line(2, sender="c@army.ml", recipient="x" * 400 + "@example.org")
    learned = lessons.read(log.encode())
    received, unasked = learned.received(_slip, learned.delivered())
    assert ("*", "army.ml") not in received
    assert unasked == {"army.ml": 1}


def test_a_quoted_sender_is_the_party_a_policy_service_hears_of():
    # Postfix logs from=<"sue doe"@example.org> and hands a policy service the same sender
    # as sue doe@example.org: what learn reads must be hers at run time too.
    log = outbound_line(1, sender='"Sue Doe"@example.org', recipient="c@partner.example")
    log += inbound_line(2, sender="c@partner.example", recipient='"sue doe"@example.org')
    learned = lessons.read(log.encode())
    received, _ = learned.received(_slip, learned.delivered())
    assert received[("sue doe@example.org", "partner.example")] == 1
    assert ('"sue doe"@example.org', "partner.example") not in received
