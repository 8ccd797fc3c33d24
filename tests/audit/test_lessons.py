"""What a Postfix log teaches: mail from a likely slip counts only as a reply."""

from __future__ import annotations

from datetime import date

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


def test_the_days_a_gateway_judged_are_told_by_each_log_s_own_dates():
    # A gateway went live on 2027-01-03. rsyslog's ISO stamps (Debian's default since
    # 12) say their year; a syslog stamp has none: in a log written in January, a
    # December line is of the year before, and teaches.
    judged = lessons.Judged(date(2027, 1, 3), year=2027, written=1)
    iso = outbound_line(1, "ops@example.org", "c@partner.example").replace(
        "Mar  1 10:01:01", "2027-01-03T00:00:01.000000+01:00"
    )
    log = (
        outbound_line(2, "ops@example.org", "c@partner.example").replace("Mar  1", "Dec 31")
        + outbound_line(3, "ops@example.org", "c@partner.example").replace("Mar  1", "Jan  2")
        + outbound_line(4, "ops@example.org", "c@partner.example").replace("Mar  1", "Jan 03")
        + iso
        + inbound_line(5, "c@partner.example", "ops@example.org").replace("Mar  1", "Jan 14")
        + outbound_line(6, "ops@example.org", "c@partner.example").replace("Mar  1", "Xyz  9")
    )
    learned = lessons.read(log.encode(), judged=judged)
    # Dec 31 (2026), Jan 2 and the line whose date cannot be read teach; the rest is left.
    assert (learned.deliveries, learned.judged_out) == (3, 2)
    assert (learned.messages_in, learned.judged_in) == (0, 1)
    assert learned.delivered()[("*", "partner.example")] == 3
