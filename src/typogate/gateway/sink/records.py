"""The metadata the sink keeps of one answered recipient, and nothing more.

Time, the client's address (and its /24 or /48 range, what reports group by) and HELO name,
the sender's domain, a keyed hash of the recipient's local part, the look-alike and the
intended domain, and the reply given. The local part itself and the sender's local part are
never kept; the whole recipient address only when the operator sets ``sink.keep_addresses``.
The hash is keyed (HMAC-SHA256), so a list of likely names cannot be hashed and matched
by anyone without the key; with it, the same recipient hit twice is counted once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import UTC, datetime

from typogate.domains import writable_form
from typogate.gateway.sink.decision import Answer
from typogate.store.sink_log import SinkRecord

_IPV4_RANGE = 24
_IPV6_RANGE = 48


class SinkRecorder:
    """Makes the record of one answer: hashing with ``key``, addresses only if kept."""

    def __init__(self, key: bytes, *, keep_addresses: bool = False) -> None:
        if not key:
            raise ValueError("the local-part hash needs a key")
        self._key = key
        self.keep_addresses = keep_addresses

    def local_hash(self, local: str) -> str:
        """The keyed hash of a local part (case folded: John and john are one recipient)."""
        return hmac.new(self._key, local.casefold().encode(), hashlib.sha256).hexdigest()

    def record(self, answer: Answer, *, client_address: str, helo: str, sender: str) -> SinkRecord:
        """The record of ``answer``, given to a client at ``client_address`` that said
        ``helo`` and ``MAIL FROM:<sender>``."""
        recipient = None
        if self.keep_addresses and answer.local:
            recipient = writable_form(f"{answer.local}@{answer.lookalike}")[:320]
        return SinkRecord(
            time=datetime.now(UTC),
            client_address=client_address[:64],
            client_range=client_range(client_address),
            # A stranger's words, as every database takes them: a byte that is not UTF-8,
            # or a NUL, is U+FFFD.
            helo=writable_form(helo)[:255],
            sender_domain=sender_domain(writable_form(sender)),
            local_hash=self.local_hash(answer.local) if answer.local else "",
            recipient=recipient,
            lookalike=answer.lookalike[:255],
            intended=answer.intended,
            outcome=answer.outcome,
            reply=answer.reply if self.keep_addresses else answer.kept_reply,
        )


def client_range(address: str) -> str:
    """The network a client address belongs to for reports: ``192.0.2.0/24``,
    ``2001:db8:1::/48``; the text itself when it is no IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = _IPV4_RANGE if ip.version == 4 else _IPV6_RANGE
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def sender_domain(sender: str) -> str:
    """The domain of ``MAIL FROM`` (lower case), ``""`` for a bounce's null sender."""
    address = sender.strip().strip("<>")
    return address.rpartition("@")[2].lower()[:255]
