"""Postfix mail logs (syslog or RFC 3339 time stamps, plain or gzip, rotated sets).

A message is a queue id: ``qmgr`` logs ``from=<sender>``, each delivery agent (smtp, lmtp,
local, virtual, pipe, error) logs ``QID: to=<recipient>, ... status=sent|bounced|deferred``.
A message held for review (a policy service or access map answering HOLD, a milter's
quarantine) has a ``QID: hold:`` (smtpd, cleanup) or ``QID: milter-hold:`` (cleanup) line
naming its sender and the recipient that held it, and no ``qmgr`` line until
``postsuper -H`` releases it (``postsuper: QID: released from hold``) or ``postsuper -d``
deletes it (``postsuper: QID: removed``).

Lines are found with compiled patterns over a whole block of bytes (the C regex engine
skips the many lines that do not matter); only the lines that matter are handled in
Python. Every pattern stops at the next line end or the next ``: to=<``, and every
backwards search is bounded, so a block is read in time linear in its length whatever its
lines look like.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from typogate.audit.deliveries import Delivery, HoldEnd, PartResult, Status
from typogate.audit.sources import MAX_LINE, Overlong

# An address between <> as Postfix logs it: a quoted local part kept with its quotes, so
# it may hold spaces, <, > and backslash escapes ("sue doe"@army.ml); anything else up to
# the first space or angle bracket.
ADDRESS = rb'(?:[^<>\s"]++|"(?:[^"\\\n]++|\\.)*+")*+'

# A sender or recipient line of a queued message, whole, in one pattern: time, agent,
# queue id, from/to, address, and for deliveries the status.
_LINE = re.compile(
    rb"^(?P<time>[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ "
    rb"postfix(?:-[\w-]+)?/(?:[\w-]+/)*(?P<agent>[\w-]+)\[\d+\]: (?P<qid>[0-9A-Za-z]+): "
    rb"(?:from=<(?P<sender>" + ADDRESS + rb")>|to=<(?P<recipient>" + ADDRESS + rb")>"
    rb"(?:[^\n]*?, status=(?P<status>[a-z]+))?)[^\n]*",
    re.MULTILINE,
)
# A hold line, whole: smtpd's or cleanup's "hold:", cleanup's "milter-hold:".
_HOLD_LINE = re.compile(
    rb"(?P<time>[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ "
    rb"postfix(?:-[\w-]+)?/(?:[\w-]+/)*[\w-]+\[\d+\]: (?P<qid>[0-9A-Za-z]+): "
    rb"(?:milter-)?hold: [^\n]*?; from=<(?P<sender>" + ADDRESS + rb")> "
    rb"to=<(?P<recipient>" + ADDRESS + rb")>"
)
_HOLD_MARK = b"hold: "
# What postsuper did to a queue id: released it from hold, or deleted it.
_POSTSUPER = re.compile(rb"/postsuper\[\d+\]: ([0-9A-Za-z]+): (released from hold|removed)")
_HOLD_ENDS = {b"released from hold": HoldEnd.RELEASED, b"removed": HoldEnd.DELETED}
# Lines that look like one of those (used to find the malformed ones, which are rare).
_MENTIONS = re.compile(rb"^[^\n]*?: [0-9A-Za-z]+: (?:to|from)=<[^\n]*", re.MULTILINE)
_DELIVERY_AGENTS = frozenset({b"smtp", b"lmtp", b"local", b"virtual", b"pipe", b"error", b"relay"})
_MONTHS = {
    m: i
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


def month_of(time: str, year: int, written: int = 12) -> str:
    """``YYYY-MM`` of a syslog (``Nov 23 06:46:30``) or ISO time stamp. A syslog stamp has
    no year: the file's, ``year`` (written in month ``written``); a month after that one
    was in the year before (a log written in January holds December's lines)."""
    if time[:4].isdigit():
        return time[:7]
    month = _MONTHS.get(time[:3], 0)
    return f"{year - 1 if month > written else year}-{month:02d}"


# The fast scan: every delivery outcome, ": to=<recipient>, ..., status=...", as tuples built
# by the C regex engine, which finds the literal ": to=<" quickly. The possessive scan for
# the status stops at the line end or at the next ": to=<", so a line of a million
# "to=<...>" is read once, not once per "to=<". Senders are looked up only for the rare
# deliveries to suspected typo domains.
_DELIVERY = re.compile(
    rb": to=<(" + ADDRESS + rb")>(?:[^,:\n]++|,(?! status=)|:(?! to=<))*+, status=([a-z]+)"
)
_TIME = re.compile(rb"[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+")
_SENDER = re.compile(rb"from=<(" + ADDRESS + rb")>")
_FROM = re.compile(rb": ([0-9A-Za-z]+): from=<(" + ADDRESS + rb")>")


def read(
    pieces: Iterable[bytes | Overlong],
    source: str,
    year: int,
    written: int,
    suspect: Callable[[str], bool],
    result: PartResult,
) -> None:
    """Read a partition, a block of whole lines at a time, into ``result``."""
    # Each recipient domain is judged once per partition, when first seen (the judgement is
    # the caller's, whose Guard caches too): as many entries as result.domains has.
    judged: dict[bytes, bool] = {}
    for block in pieces:
        if isinstance(block, Overlong):
            result.lines += 1
            result.bad(
                source,
                result.lines,
                f"a line of {block.size:,} bytes (over {MAX_LINE:,}) is no mail log line: skipped",
            )
        else:
            _read_block(block, source, year, written, suspect, judged, result)


def _read_block(
    chunk: bytes,
    source: str,
    year: int,
    written: int,
    suspect: Callable[[str], bool],
    judged: dict[bytes, bool],
    result: PartResult,
) -> None:
    base = result.lines  # lines of this partition before the block
    domains: dict[bytes, int] = {}
    statuses: dict[bytes, int] = {}
    suspects: list[tuple[bytes, bytes]] = []
    found = _DELIVERY.findall(chunk)
    for address, status in found:
        statuses[status] = statuses.get(status, 0) + 1
        domain = address.rpartition(b"@")[2].lower()
        seen = domains.get(domain)
        if seen is None:
            domains[domain] = 1
            flagged = judged.get(domain)
            if flagged is None:
                flagged = judged[domain] = bool(domain) and suspect(
                    domain.decode("utf-8", "replace")
                )
            if flagged:
                suspects.append((address, status))
        else:
            domains[domain] = seen + 1
            if judged[domain]:
                suspects.append((address, status))
    count = chunk.count
    messages = count(b" (queue active)")  # how qmgr ends each message's from= line
    result.messages += messages
    # Cheap checks for the rare broken line: every to= line is a whole delivery line, every
    # from= line ends as qmgr writes it. Only then is the block searched line by line.
    if count(b": to=<") != len(found) or count(b": from=<") != messages:
        _malformed(chunk, base, source, result)
    _locate(chunk, base, suspects, source, year, written, result)
    if _HOLD_MARK in chunk:
        _holds(chunk, base, source, year, written, suspect, result)
    if b"/postsuper[" in chunk:
        for qid, what in _POSTSUPER.findall(chunk):
            result.hold_ends[qid.decode()] = _HOLD_ENDS[what]
    for status, n in statuses.items():
        key = _STATUSES.get(status, Status.UNKNOWN).value
        result.by_status[key] = result.by_status.get(key, 0) + n
        result.deliveries += n
    for domain, n in domains.items():
        name = domain.decode("utf-8", "replace")
        result.domains[name] = result.domains.get(name, 0) + n
    result.lines += count(b"\n") + (0 if chunk.endswith(b"\n") or not chunk else 1)


class _Lines:
    """Where the lines of a block are, found walking forward only (each byte looked at
    about once, however many positions are asked about)."""

    def __init__(self, chunk: bytes, base: int) -> None:
        self.chunk = chunk
        self.number = base + 1  # the number of the line holding ``position``
        self.position = 0
        self.start = 0  # the line holding ``position`` starts here...
        self.end = -1  # ...and ends here (-1: not looked for yet)

    def at(self, position: int) -> tuple[int, int, int]:
        """Number, start and end of the line holding ``position`` (not before the last)."""
        chunk = self.chunk
        if self.end < 0 or position > self.end:
            newlines = chunk.count(b"\n", self.position, position)
            if newlines:
                self.number += newlines
                self.start = chunk.rfind(b"\n", self.position, position) + 1
            end = chunk.find(b"\n", position)
            self.end = len(chunk) if end < 0 else end
        self.position = position
        return self.number, self.start, self.end


def _locate(
    chunk: bytes,
    base: int,
    suspects: list[tuple[bytes, bytes]],
    source: str,
    year: int,
    written: int,
    result: PartResult,
) -> None:
    """Line number, time, queue id and sender of each suspect delivery (rare: cheap)."""
    lines = _Lines(chunk, base)
    search = 0
    parsed: tuple[int, bytes, str] = (-1, b"", "")  # line start, queue id, time
    located: list[tuple[int, bytes, bytes, bytes, str, int]] = []
    for address, status in suspects:
        at = chunk.find(b": to=<" + address + b">", search)
        if at < 0:  # cannot be: the pattern found it here
            continue
        search = at + 1
        number, start, end = lines.at(at)
        if parsed[0] != start:  # several deliveries on one line: parsed once
            text = chunk[start:end]
            whole = _LINE.match(text)
            stamp = _TIME.match(text)
            time = stamp.group().decode() if stamp else ""
            parsed = (start, whole["qid"] if whole else b"", time)
        _, qid, time = parsed
        located.append((start, qid, address, status, time, number))
    senders = _senders(chunk, [(start, qid) for start, qid, *_ in located])
    for (_, qid, address, status, time, number), sender in zip(located, senders, strict=True):
        result.suspects.append(
            Delivery(
                time,
                month_of(time, year, written) if time else "",
                sender.decode("utf-8", "replace"),
                address.decode("utf-8", "replace"),
                _STATUSES.get(status, Status.UNKNOWN),
                source,
                number,
                qid.decode(),
            )
        )


def _senders(chunk: bytes, wanted: list[tuple[int, bytes]]) -> list[bytes]:
    """The ``from=`` of each (line start, queue id): the qmgr line of that queue id
    nearest before it in this block (usually just before), else b"".

    Searched backwards from each position while that stays cheap (at most a few times the
    block's length in all); beyond, one forward pass over the block's from= lines answers
    the rest.
    """
    senders: list[bytes] = []
    budget = 4 * len(chunk) + 65536
    for index, (start, qid) in enumerate(wanted):
        if not qid:
            senders.append(b"")
            continue
        if budget <= 0:
            return senders + _senders_in_one_pass(chunk, wanted[index:])
        marker = chunk.rfind(b": " + qid + b": from=<", 0, start)
        budget -= start - max(marker, 0)
        found = _SENDER.match(chunk, marker + len(qid) + 4) if marker >= 0 else None
        senders.append(found.group(1) if found else b"")
    return senders


def _senders_in_one_pass(chunk: bytes, wanted: list[tuple[int, bytes]]) -> list[bytes]:
    queue_ids = {qid for _, qid in wanted if qid}
    latest: dict[bytes, bytes] = {}
    senders: list[bytes] = []
    for found in _FROM.finditer(chunk):
        while len(senders) < len(wanted) and wanted[len(senders)][0] < found.start():
            senders.append(latest.get(wanted[len(senders)][1], b""))
        if found.group(1) in queue_ids:
            latest[found.group(1)] = found.group(2)
    senders.extend(latest.get(qid, b"") for _, qid in wanted[len(senders) :])
    return senders


def _holds(
    chunk: bytes,
    base: int,
    source: str,
    year: int,
    written: int,
    suspect: Callable[[str], bool],
    result: PartResult,
) -> None:
    """The messages held (``hold:``, ``milter-hold:``) for a suspect recipient, each a
    delivery with status held: its time, sender and recipient from the hold line."""
    lines = _Lines(chunk, base)
    at = chunk.find(_HOLD_MARK)
    while at >= 0:
        number, start, end = lines.at(at)
        held = _HOLD_LINE.match(chunk, start, end)
        if held is not None:
            recipient = held["recipient"].decode("utf-8", "replace")
            if suspect(recipient.rpartition("@")[2].lower()):
                time = held["time"].decode()
                result.suspects.append(
                    Delivery(
                        time,
                        month_of(time, year, written),
                        held["sender"].decode("utf-8", "replace"),
                        recipient,
                        Status.HELD,
                        source,
                        number,
                        held["qid"].decode(),
                    )
                )
        at = chunk.find(_HOLD_MARK, end)


def _malformed(chunk: bytes, base: int, source: str, result: PartResult) -> None:
    """Count and locate lines that mention a from=/to= but are not whole log lines."""
    line = base + 1
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


def find_senders(pieces: Iterable[bytes | Overlong], queue_ids: Iterable[str]) -> dict[str, str]:
    """The ``from=`` of the given queue ids in these blocks (a join across partitions):
    one pass over the from= lines, whatever the number of queue ids."""
    wanted = {qid.encode() for qid in queue_ids}
    found: dict[str, str] = {}
    for block in pieces:
        if isinstance(block, Overlong):
            continue
        for qid, sender in _FROM.findall(block):
            if qid in wanted:
                found.setdefault(qid.decode(), sender.decode("utf-8", "replace"))
    return found
