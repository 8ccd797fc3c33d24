"""What an audit reads out of mail logs and mailboxes: one delivery per message recipient."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """Where a message to one recipient ended up."""

    SENT = "sent"  # delivered to the recipient's server: if the domain is a typo, a leak
    BOUNCED = "bounced"  # refused for good: nothing leaked
    DEFERRED = "deferred"  # still being retried when the log ends
    HELD = "held"  # in the MTA's hold queue when the log ends: nothing left yet
    RELEASED = "released"  # released from hold, but no delivery logged by the log's end
    DELETED = "deleted"  # deleted from the hold queue: never left
    UNKNOWN = "unknown"  # a sent-items copy or a log without the outcome


class HoldEnd(StrEnum):
    """What ``postsuper`` did to a held message."""

    RELEASED = "released"
    DELETED = "deleted"


# How final a status is: a delivery's outcome outranks a hold line of the same message (a
# held message that was released and delivered was sent), and a final outcome a retry.
RANK = {
    Status.HELD: 0,
    Status.RELEASED: 0,
    Status.DELETED: 0,
    Status.UNKNOWN: 1,
    Status.DEFERRED: 1,
    Status.SENT: 2,
    Status.BOUNCED: 2,
}

_SYSLOG_TIME = "%Y %b %d %H:%M:%S"


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

    @property
    def moment(self) -> datetime.datetime | None:
        """When, for ordering: ISO 8601 times in UTC, syslog times (local, no zone) in the
        year of ``month``; None when the source's time cannot be read."""
        text = self.time.strip()
        try:
            if text[:4].isdigit():
                moment = datetime.datetime.fromisoformat(text)
                if moment.tzinfo is not None:
                    moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
                return moment
            if self.month[:4].isdigit():
                return datetime.datetime.strptime(f"{self.month[:4]} {text}", _SYSLOG_TIME)
        except ValueError:
            pass
        return None


@dataclass
class PartResult:
    """What one partition of the input yields. Merged across partitions by the engines."""

    lines: int = 0
    messages: int = 0
    deliveries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    domains: dict[str, int] = field(default_factory=dict)  # recipient domain -> deliveries
    suspects: list[Delivery] = field(default_factory=list)  # deliveries to suspected typos
    hold_ends: dict[str, HoldEnd] = field(default_factory=dict)  # queue id -> released/deleted
    malformed: int = 0
    malformed_examples: list[tuple[str, int, str]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, why): read no further

    def count(self, status: Status) -> None:
        self.by_status[status.value] = self.by_status.get(status.value, 0) + 1

    def bad(self, source: str, line: int, why: str) -> None:
        self.malformed += 1
        if len(self.malformed_examples) < 20:
            self.malformed_examples.append((source, line, why))

    def stopped(self, source: str, why: str) -> None:
        """The rest of ``source`` could not be read; what was read before counts."""
        self.problems.append((source, why))
