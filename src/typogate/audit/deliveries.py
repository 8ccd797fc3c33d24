"""What an audit reads out of mail logs and mailboxes: one delivery per message recipient."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """Where a message to one recipient ended up."""

    SENT = "sent"  # delivered to the recipient's server: if the domain is a typo, a leak
    BOUNCED = "bounced"  # refused for good: nothing leaked
    DEFERRED = "deferred"  # still being retried when the log ends
    UNKNOWN = "unknown"  # a sent-items copy or a log without the outcome


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient of one message, with where it was read from (``source:line``)."""

    time: str  # as written in the source
    month: str  # YYYY-MM, for the report ("" when the source gives no date)
    sender: str
    recipient: str
    status: Status
    source: str
    line: int  # line (logs) or message number (mailboxes); partition-relative until merged
    queue_id: str = ""

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass
class PartResult:
    """What one partition of the input yields. Merged across partitions by the engines."""

    lines: int = 0
    messages: int = 0
    deliveries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    domains: dict[str, int] = field(default_factory=dict)  # recipient domain -> deliveries
    suspects: list[Delivery] = field(default_factory=list)  # deliveries to suspected typos
    malformed: int = 0
    malformed_examples: list[tuple[str, int, str]] = field(default_factory=list)

    def count(self, status: Status) -> None:
        self.by_status[status.value] = self.by_status.get(status.value, 0) + 1

    def bad(self, source: str, line: int, why: str) -> None:
        self.malformed += 1
        if len(self.malformed_examples) < 20:
            self.malformed_examples.append((source, line, why))
