"""Postfix log lines for tests that learn from a log: message ``n`` sent out by the smtp
client, or received and delivered here by local (queue ids O<n> and I<n>)."""

from __future__ import annotations

_OUT = (
    "Mar  1 10:{m:02d}:00 mx1 postfix/qmgr[90]: O{n}: from=<{sender}>, size=900, nrcpt=1 (queue active)\n"  # noqa: E501
    "Mar  1 10:{m:02d}:01 mx1 postfix/smtp[91]: O{n}: to=<{recipient}>, relay=mx[203.0.113.4]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)\n"  # noqa: E501
)
_IN = (
    "Mar  1 11:{m:02d}:00 mx1 postfix/qmgr[90]: I{n}: from=<{sender}>, size=900, nrcpt=1 (queue active)\n"  # noqa: E501
    "Mar  1 11:{m:02d}:01 mx1 postfix/local[92]: I{n}: to=<{recipient}>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)\n"  # noqa: E501
)


def outbound_line(n: int, sender: str, recipient: str) -> str:
    """Message ``n`` from one of ours, delivered to ``recipient`` outside."""
    return _OUT.format(m=n % 60, n=n, sender=sender, recipient=recipient)


def inbound_line(n: int, sender: str, recipient: str) -> str:
    """Message ``n`` from ``sender`` outside, delivered to ``recipient`` here."""
    return _IN.format(m=n % 60, n=n, sender=sender, recipient=recipient)


def mail_log(
    sent: list[tuple[str, str, int]], received: list[tuple[str, str, int]] | None = None
) -> str:
    """A log of ``(sender, recipient, times)`` messages: those ``sent`` out, then those
    ``received`` here, numbered in that order."""
    lines = []
    for make, messages in ((outbound_line, sent), (inbound_line, received or [])):
        for sender, recipient, times in messages:
            for _ in range(times):
                lines.append(make(len(lines) + 1, sender, recipient))
    return "".join(lines)
