"""Postfix mail logs (syslog or RFC 3339 time stamps, plain or gzip, rotated sets).

A message is a queue id: ``qmgr`` logs ``from=<sender>``, each delivery agent (smtp, lmtp,
local, virtual, pipe, error) logs ``to=<recipient>, ... status=sent|bounced|deferred``.
Lines are found with one compiled pattern over a whole chunk of bytes (the C regex engine
skips the many lines that do not matter); only the lines that name a sender or a recipient
are handled in Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from typogate.audit.deliveries import Delivery, PartResult, Status

# Any line that mentions a sender or recipient of a queued message.
_RELEVANT = re.compile(rb"^[^\n]* postfix[^\n]*?: [0-9A-Za-z]+: (?:to|from)=<[^\n]*", re.MULTILINE)
_LINE = re.compile(
    rb"^(?P<time>[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ "
    rb"postfix(?:-[\w-]+)?/(?:[\w-]+/)*(?P<agent>[\w-]+)\[\d+\]: (?P<qid>[0-9A-Za-z]+): "
    rb"(?P<kind>to|from)=<(?P<address>[^<>\s]*)>(?P<rest>.*)$"
)
_STATUS = re.compile(rb", status=(?P<status>[a-z]+)")
_DELIVERY_AGENTS = frozenset({b"smtp", b"lmtp", b"local", b"virtual", b"pipe", b"error", b"relay"})
_MONTHS = {
    m: f"{i:02d}"
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_STATUSES = {
    b"sent": Status.SENT,
    b"bounced": Status.BOUNCED,
    b"deferred": Status.DEFERRED,
    b"expired": Status.BOUNCED,
}


def month_of(time: str, year: int) -> str:
    """``YYYY-MM`` of a syslog (``Nov 23 06:46:30``, year from the file) or ISO time stamp."""
    if time[:4].isdigit():
        return time[:7]
    return f"{year}-{_MONTHS.get(time[:3], '00')}"


def read(
    chunk: bytes,
    source: str,
    year: int,
    suspect: Callable[[str], bool],
    result: PartResult,
) -> dict[str, str]:
    """Read one chunk of whole lines into ``result``; returns the senders it saw by queue id."""
    senders: dict[str, str] = {}
    line = 1
    position = 0
    count = chunk.count
    for found in _RELEVANT.finditer(chunk):
        start = found.start()
        line += count(b"\n", position, start)
        position = start
        match = _LINE.match(found.group())
        if match is None:
            result.bad(source, line, "not a Postfix from=/to= log line (truncated?)")
            continue
        qid = match["qid"].decode()
        address = match["address"].decode("utf-8", "replace")
        if match["kind"] == b"from":
            if match["agent"] == b"qmgr":
                senders[qid] = address
                result.messages += 1
            continue
        if match["agent"] not in _DELIVERY_AGENTS:
            continue
        status_match = _STATUS.search(match["rest"])
        if status_match is None:
            result.bad(source, line, "delivery line without status=")
            continue
        status = _STATUSES.get(status_match["status"], Status.UNKNOWN)
        result.deliveries += 1
        result.count(status)
        domain = address.rpartition("@")[2].lower()
        result.domains[domain] = result.domains.get(domain, 0) + 1
        if domain and suspect(domain):
            time = match["time"].decode()
            result.suspects.append(
                Delivery(
                    time,
                    month_of(time, year),
                    senders.get(qid, ""),
                    address,
                    status,
                    source,
                    line,
                    qid,
                )
            )
    result.lines += count(b"\n") + (0 if chunk.endswith(b"\n") or not chunk else 1)
    return senders


def find_senders(chunk: bytes, queue_ids: Iterable[str]) -> dict[str, str]:
    """The ``from=`` of the given queue ids in this chunk (a join across partitions)."""
    wanted = {qid.encode() for qid in queue_ids}
    found: dict[str, str] = {}
    for hit in _RELEVANT.finditer(chunk):
        match = _LINE.match(hit.group())
        if match and match["kind"] == b"from" and match["qid"] in wanted:
            found[match["qid"].decode()] = match["address"].decode("utf-8", "replace")
    return found
