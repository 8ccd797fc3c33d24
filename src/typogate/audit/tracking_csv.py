"""CSV logs: Exchange message tracking (``Get-MessageTrackingLog | Export-Csv``) and any CSV
with a column mapping (``--columns time=Date,sender=From,recipient=To,status=Result``)."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from typogate.audit.deliveries import Delivery, PartResult, Status
from typogate.audit.sources import MAX_LINE

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


class _Lines:
    """The file's lines, as the csv module reads them; a line longer than ``MAX_LINE``
    characters is dropped unread and reported, so a field with no end cannot make the
    reader hold the file."""

    def __init__(self, handle: TextIO, path: Path, result: PartResult) -> None:
        self.handle = handle
        self.path = path
        self.result = result
        self.number = 0  # lines read so far

    def __iter__(self) -> Iterator[str]:
        while line := self.handle.readline(MAX_LINE + 1):
            self.number += 1
            if len(line) > MAX_LINE and not line.endswith("\n"):
                size = len(line)
                while rest := self.handle.readline(MAX_LINE + 1):
                    size += len(rest.rstrip("\r\n"))
                    if rest.endswith("\n"):
                        break
                self.result.bad(
                    str(self.path),
                    self.number,
                    f"a line of {size:,} characters (a field with no end?): skipped",
                )
                continue
            yield line


def read(
    path: Path,
    columns: dict[str, str],
    exchange: bool,
    suspect: Callable[[str], bool],
    result: PartResult,
) -> None:
    """Read one CSV file into ``result``, a row at a time. A row that cannot be read (a
    line or field too long, broken quoting) is counted as malformed, and the rows after it
    are read."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        source = _Lines(handle, path, result)
        lines = iter(source)
        first = next(lines, "")
        skip = 1 if first.startswith("#TYPE") else 0  # Export-Csv's type line
        reader = csv.DictReader(lines if skip else itertools.chain([first], lines))
        try:
            fieldnames = reader.fieldnames
        except csv.Error as error:
            result.stopped(str(path), f"line {source.number:,}: {error}: no header row")
            return
        if fieldnames is None:
            return
        missing = [c for c in columns.values() if c not in fieldnames]
        if missing:
            result.bad(str(path), 1 + skip, f"missing columns {missing}")
            return
        number = 1 + skip
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                result.lines += 1
                result.bad(str(path), source.number, f"{error}: row skipped")
                continue
            number += 1
            _take(row, path, number, columns, exchange, suspect, result)


def _take(
    row: dict[str, str],
    path: Path,
    number: int,
    columns: dict[str, str],
    exchange: bool,
    suspect: Callable[[str], bool],
    result: PartResult,
) -> None:
    result.lines += 1
    if None in row or any(value is None for value in row.values()):
        result.bad(str(path), number, "row has the wrong number of fields")
        return
    raw_status = (row.get(columns.get("status", ""), "") or "").strip()
    if exchange:
        status = _EXCHANGE_EVENTS.get(raw_status.upper())
        if status is None:
            return  # RECEIVE, SUBMIT, ...: not the end of a journey
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
