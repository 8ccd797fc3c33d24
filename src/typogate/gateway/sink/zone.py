"""The DNS records that put the sink's policy into effect, as zone-file lines.

A look-alike that should explain (refuse with the hint, or forward) gets an MX record that
points at the sink; one that should get no mail at all gets a null MX (RFC 7505:
preference 0, exchange ``.``), so senders fail at once without even connecting, plus an SPF
record that says the domain sends no mail either. A whole suffix gets the same records as a
wildcard (``*.ml``): in the suffix's own zone a wildcard covers exactly the names that are
not registered, since a registered name is delegated and answers for itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from typogate.config import Served
from typogate.gateway.sink.decision import served_name
from typogate.vocabulary import SinkChoice

TTL = 3600
MX_PREFERENCE = 10


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """One resource record: owner name (absolute, trailing dot), type and data."""

    owner: str
    type: str
    data: str
    ttl: int = TTL
    note: str = ""

    def __str__(self) -> str:
        line = f"{self.owner}\t{self.ttl}\tIN\t{self.type}\t{self.data}"
        return f"{line}\t; {self.note}" if self.note else line


def records(served: list[Served], sink_hostname: str) -> list[ZoneRecord]:
    """The records for every served entry, in the configuration's order.

    Raises :class:`~typogate.errors.ConfigError` for an entry that is not a domain or
    suffix (the same check the sink makes when it starts).
    """
    exchange = sink_hostname.strip(".").lower() + "."
    found = []
    for entry in served:
        name = served_name(entry)
        owner = f"{name}." if entry.domain is not None else f"*.{name}."
        if entry.choice is SinkChoice.NULL:
            found.append(ZoneRecord(owner, "MX", "0 .", note="null MX (RFC 7505): no mail"))
            found.append(ZoneRecord(owner, "TXT", '"v=spf1 -all"', note="and sends none"))
            continue
        why = {
            SinkChoice.REFUSE: "the sink refuses with the address the sender meant",
            SinkChoice.FORWARD: f"the sink passes mail on to {entry.forward_to}",
        }[entry.choice]
        found.append(ZoneRecord(owner, "MX", f"{MX_PREFERENCE} {exchange}", note=why))
    return found
