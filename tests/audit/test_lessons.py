"""What a Postfix log teaches: mail from a likely slip counts only as a reply."""

from __future__ import annotations

from typogate.audit import lessons

OUT = (
    "Mar  1 10:00:{n:02d} mx1 postfix/qmgr[90]: O{n}: from=<{sender}>, size=9, nrcpt=1 (queue active)\n"  # noqa: E501
    "Mar  1 10:00:{n:02d} mx1 postfix/smtp[91]: O{n}: to=<{recipient}>, relay=mx[203.0.113.4]:25, dsn=2.0.0, status=sent (250 ok)\n"  # noqa: E501
)
IN = (
    "Mar  1 11:00:{n:02d} mx1 postfix/qmgr[90]: I{n}: from=<{sender}>, size=9, nrcpt=1 (queue active)\n"  # noqa: E501
    "Mar  1 11:00:{n:02d} mx1 postfix/local[92]: I{n}: to=<{recipient}>, relay=local, dsn=2.0.0, status=sent (delivered)\n"  # noqa: E501
)


def _slip(domain: str) -> bool:
    return domain == "army.ml"


def test_a_reply_counts_and_mail_nobody_asked_for_does_not():
    log = OUT.format(n=1, sender="ops@example.org", recipient="c@army.ml")
    log += IN.format(n=2, sender="c@army.ml", recipient="ops@example.org")
    log += IN.format(n=3, sender="c@army.ml", recipient="sue@example.org")
    log += IN.format(n=4, sender="b@partner.example", recipient="sue@example.org")
    received, unasked = lessons.read(log.encode()).received(_slip)
    assert received[("ops@example.org", "army.ml")] == 1
    assert received[("*", "army.ml")] == 1
    assert received[("sue@example.org", "partner.example")] == 1
    assert unasked == {"army.ml": 1}


def test_a_recipient_too_long_to_be_ours_is_answered_by_nobody():
    # Kept for the organisation only (no party of ours is that long): the organisation's
    # own deliveries to army.ml must not make its mail a reply, nor be counted twice.
    log = OUT.format(n=1, sender="ops@example.org", recipient="c@army.ml")
    log += IN.format(n=2, sender="c@army.ml", recipient="x" * 400 + "@example.org")
    received, unasked = lessons.read(log.encode()).received(_slip)
    assert ("*", "army.ml") not in received
    assert unasked == {"army.ml": 1}
