"""CSV logs: Exchange message tracking (``Get-MessageTrackingLog | Export-Csv``) and any CSV
with a column mapping (``--columns time=Date,sender=From,recipient=To,status=Result``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from typogate.audit.deliveries import Delivery, PartResult, Status

EXCHANGE_COLUMNS = {
    "time": "Timestamp",
    "sender": "Sender",
    "recipient": "Recipients",
    "status": "EventId",
}
# Exchange event ids that end a message's journey to a recipient.
_EXCHANGE_EVENTS = {
    "SEND": Status.SENT,
    "DELIVER": Status.SENT,
    "FAIL": Status.BOUNCED,
    "DEFER": Status.DEFERRED,
}
_GENERIC_STATUS = {
    "sent": Status.SENT,
    "delivered": Status.SENT,
    "send": Status.SENT,
    "deliver": Status.SENT,
    "bounced": Status.BOUNCED,
    "failed": Status.BOUNCED,
    "fail": Status.BOUNCED,
    "deferred": Status.DEFERRED,
    "defer": Status.DEFERRED,
}


def parse_columns(text: str) -> dict[str, str]:
    """``time=Date,sender=From,recipient=To,status=Result`` -> mapping; recipient required."""
    mapping = {}
    for part in text.split(","):
        key, sep, column = part.partition("=")
        if not sep or key.strip() not in ("time", "sender", "recipient", "status"):
            raise ValueError(f"bad column mapping {part!r} (use time=,sender=,recipient=,status=)")
        mapping[key.strip()] = column.strip()
    if "recipient" not in mapping:
        raise ValueError("the column mapping needs recipient=COLUMN")
    return mapping


def read(
    path: Path,
    columns: dict[str, str],
    exchange: bool,
    suspect: Callable[[str], bool],
    result: PartResult,
) -> None:
    """Read one CSV file into ``result``."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    lines = text.splitlines(keepends=True)
    skip = 1 if lines and lines[0].startswith("#TYPE") else 0  # Export-Csv's type line
    reader = csv.DictReader(io.StringIO("".join(lines[skip:])))
    missing = [c for c in columns.values() if reader.fieldnames and c not in reader.fieldnames]
    if missing:
        result.bad(str(path), 1 + skip, f"missing columns {missing}")
        return
    for number, row in enumerate(reader, start=2 + skip):
        result.lines += 1
        if None in row or any(value is None for value in row.values()):
            result.bad(str(path), number, "row has the wrong number of fields")
            continue
        raw_status = (row.get(columns.get("status", ""), "") or "").strip()
        if exchange:
            status = _EXCHANGE_EVENTS.get(raw_status.upper())
            if status is None:
                continue  # RECEIVE, SUBMIT, ...: not the end of a journey
        else:
            status = _GENERIC_STATUS.get(raw_status.lower(), Status.UNKNOWN)
        time = (row.get(columns.get("time", ""), "") or "").strip()
        month = time[:7] if time[:4].isdigit() else ""
        sender = (row.get(columns.get("sender", ""), "") or "").strip()
        recipients = [r.strip() for r in row[columns["recipient"]].replace(",", ";").split(";")]
        result.messages += 1
        for recipient in filter(None, recipients):
            if "@" not in recipient:
                result.bad(str(path), number, f"not an address: {recipient[:60]!r}")
                continue
            result.deliveries += 1
            result.count(status)
            domain = recipient.rpartition("@")[2].lower()
            result.domains[domain] = result.domains.get(domain, 0) + 1
            if suspect(domain):
                result.suspects.append(
                    Delivery(time, month, sender, recipient, status, str(path), number)
                )
