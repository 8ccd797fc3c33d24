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

# A sender or recipient line of a queued message, whole, in one pattern: time, agent,
# queue id, from/to, address, and for deliveries the status.
_LINE = re.compile(
    rb"^(?P<time>[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ "
    rb"postfix(?:-[\w-]+)?/(?:[\w-]+/)*(?P<agent>[\w-]+)\[\d+\]: (?P<qid>[0-9A-Za-z]+): "
    rb"(?:from=<(?P<sender>[^<>\s]*)>|to=<(?P<recipient>[^<>\s]*)>"
    rb"(?:[^\n]*?, status=(?P<status>[a-z]+))?)[^\n]*",
    re.MULTILINE,
)
# Lines that look like one of those (used to find the malformed ones, which are rare).
_MENTIONS = re.compile(rb"^[^\n]*?: [0-9A-Za-z]+: (?:to|from)=<[^\n]*", re.MULTILINE)
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


# The fast scan: every delivery outcome, "to=<recipient>, ..., status=...", as tuples built
# by the C regex engine, which finds the literal "to=<" quickly. Senders are looked up only
# for the rare deliveries to suspected typo domains.
_DELIVERY = re.compile(rb"to=<([^<>\s]*)>[^\n]*?, status=([a-z]+)")
_TIME = re.compile(rb"[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+")
_SENDER = re.compile(rb"from=<([^<>\s]*)>")


def read(
    chunk: bytes,
    source: str,
    year: int,
    suspect: Callable[[str], bool],
    result: PartResult,
) -> None:
    """Read one chunk of whole lines into ``result``."""
    domains: dict[bytes, int] = {}
    statuses: dict[bytes, int] = {}
    suspects: list[tuple[bytes, bytes]] = []
    # Judged once per chunk, when first seen: the judgement is the caller's (its Guard caches).
    suspect_domains: set[bytes] = set()
    found = _DELIVERY.findall(chunk)
    for address, status in found:
        statuses[status] = statuses.get(status, 0) + 1
        domain = address.rpartition(b"@")[2].lower()
        seen = domains.get(domain)
        if seen is None:
            domains[domain] = 1
            if domain and suspect(domain.decode("utf-8", "replace")):
                suspect_domains.add(domain)
        else:
            domains[domain] = seen + 1
        if domain in suspect_domains:
            suspects.append((address, status))
    count = chunk.count
    messages = count(b" (queue active)")  # how qmgr ends each message's from= line
    result.messages += messages
    # Cheap checks for the rare broken line: every to= line is a whole delivery line, every
    # from= line ends as qmgr writes it. Only then is the chunk searched line by line.
    if count(b": to=<") != len(found) or count(b": from=<") != messages:
        _malformed(chunk, source, result)
    _locate(chunk, suspects, source, year, result)
    for status, n in statuses.items():
        key = _STATUSES.get(status, Status.UNKNOWN).value
        result.by_status[key] = result.by_status.get(key, 0) + n
        result.deliveries += n
    for domain, n in domains.items():
        name = domain.decode("utf-8", "replace")
        result.domains[name] = result.domains.get(name, 0) + n
    result.lines += count(b"\n") + (0 if chunk.endswith(b"\n") or not chunk else 1)


def _locate(
    chunk: bytes,
    suspects: list[tuple[bytes, bytes]],
    source: str,
    year: int,
    result: PartResult,
) -> None:
    """Line number, time, queue id and sender of each suspect delivery (rare: cheap)."""
    line, position, search = 1, 0, 0
    for address, status in suspects:
        at = chunk.find(b"to=<" + address + b">", search)
        line += chunk.count(b"\n", position, at)
        position, search = at, at + 1
        start = chunk.rfind(b"\n", 0, at) + 1
        text = chunk[start : chunk.find(b"\n", at) if chunk.find(b"\n", at) >= 0 else len(chunk)]
        whole = _LINE.match(text)
        qid = whole["qid"] if whole else b""
        stamp = _TIME.match(text)
        time = stamp.group().decode() if stamp else ""
        sender = b""
        if qid:  # the qmgr from= line of the same message, usually just before
            marker = chunk.rfind(b": " + qid + b": from=<", 0, start)
            if marker >= 0:
                found = _SENDER.search(chunk, marker, marker + 1000)
                sender = found.group(1) if found else b""
        result.suspects.append(
            Delivery(
                time,
                month_of(time, year) if time else "",
                sender.decode("utf-8", "replace"),
                address.decode("utf-8", "replace"),
                _STATUSES.get(status, Status.UNKNOWN),
                source,
                line,
                qid.decode(),
            )
        )


def _malformed(chunk: bytes, source: str, result: PartResult) -> None:
    """Count and locate lines that mention a from=/to= but are not whole log lines."""
    line = 1
    position = 0
    for found in _MENTIONS.finditer(chunk):
        line += chunk.count(b"\n", position, found.start())
        position = found.start()
        text = found.group()
        whole = _LINE.match(text)
        if (
            whole is None
            or whole.end() != len(text)
            or (
                whole["recipient"] is not None
                and whole["status"] is None
                and b"status=" not in text
                and whole["agent"] in _DELIVERY_AGENTS
            )
        ):
            result.bad(source, line, "not a whole Postfix from=/to= log line (truncated?)")


def find_senders(chunk: bytes, queue_ids: Iterable[str]) -> dict[str, str]:
    """The ``from=`` of the given queue ids in this chunk (a join across partitions)."""
    found: dict[str, str] = {}
    for qid in queue_ids:
        marker = chunk.find(b": " + qid.encode() + b": from=<")
        if marker >= 0:
            sender = _SENDER.search(chunk, marker, marker + 1000)
            if sender:
                found[qid] = sender.group(1).decode("utf-8", "replace")
    return found
