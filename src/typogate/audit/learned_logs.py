"""What ``typogate learn`` read of each log before, so that a log learned again counts only
its new lines.

An admin runs ``typogate learn /var/log/mail.log*`` more than once over the same files: to
see its table again, or a week later with the older archives. By then ``mail.log`` may
have grown, ``mail.log.1`` be the ``mail.log`` read before, renamed, and ``mail.log.2.gz``
the one before that, compressed. A log is named by the digest of its first
line, which renaming and compressing keep (it holds the time, the host and a process id),
and the store keeps how many bytes of its text were learned: a plain log is read on from
there, a compressed one (which no longer grows) from there to its end.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from typogate.audit.sources import Part, first_line

TO_ITS_END = -1  # a compressed log: read to its end, it never grows


@dataclass(frozen=True, slots=True)
class LogRead:
    """How far one log is read once this run is learned: ``log`` names it (the digest of its
    first line), ``learned`` is the bytes of its text, or :data:`TO_ITS_END`."""

    log: str
    learned: int
    path: str


@dataclass(frozen=True, slots=True)
class ReadBefore:
    """A log, or its start, that an earlier run learned and this one does not read again:
    ``passed`` bytes of its text (:data:`TO_ITS_END`: all of it); ``same_as``, another path
    of this run that is the same log (a copy)."""

    path: str
    passed: int
    same_as: str | None = None


@dataclass(frozen=True, slots=True)
class Resumed:
    """What is left to learn (``parts``); what was learned before (``known``: read again
    only for what the logs show, never counted twice); how far each log will have been
    read (``reads``, to keep with what is learned); and what is passed over (``before``)."""

    parts: list[Part]
    known: list[Part]
    reads: list[LogRead]
    before: list[ReadBefore]


def resume(parts: list[Part], learned: dict[str, int]) -> Resumed:
    """The ``parts`` of postfix logs (whole lines, as ``plan(..., whole_lines=True)`` cuts
    them) split where ``learned`` (log -> bytes, as the store keeps them) says an earlier
    run stopped."""
    left: list[Part] = []
    known: list[Part] = []
    reads: list[LogRead] = []
    before: list[ReadBefore] = []
    named: dict[str, str] = {}  # log -> the path of this run that is read for it
    for path, grouped in groupby(parts, key=lambda part: part.path):
        pieces = list(dict.fromkeys(grouped))  # a path given twice is read once
        line = first_line(Path(path))
        if line is None:  # no whole line yet: nothing to name it by, nor to learn
            continue
        log = hashlib.sha256(line).hexdigest()
        if log in named:
            before.append(ReadBefore(path, TO_ITS_END, same_as=named[log]))
            continue
        named[log] = path
        compressed = pieces[0].end < 0
        end = TO_ITS_END if compressed else pieces[-1].end
        passed = learned.get(log, 0)
        if passed == TO_ITS_END:
            before.append(ReadBefore(path, TO_ITS_END))
            known.extend(pieces)
            continue
        if not compressed and passed > end:
            passed = 0  # shorter now than what was read of it: another log, first line alike
        if passed:
            before.append(ReadBefore(path, passed))
        for piece in pieces:
            known.extend(_within(piece, 0, passed))
            left.extend(_within(piece, passed, TO_ITS_END))
        reads.append(LogRead(log, end, path))
    return Resumed(left, known, reads, before)


def _within(part: Part, start: int, end: int) -> list[Part]:
    """What of ``part`` lies from byte ``start`` to ``end`` of its text (:data:`TO_ITS_END`:
    on to its end); an empty list for nothing."""
    lo = max(part.start, start)
    hi = min(_at(part.end), _at(end))
    if hi <= lo:
        return []
    if (lo, hi) == (part.start, _at(part.end)):
        return [part]
    if hi == math.inf:
        return [Part(part.path, part.format, lo, TO_ITS_END, part.year, part.month, part.bytes)]
    last = int(hi)
    return [Part(part.path, part.format, lo, last, part.year, part.month, last - lo)]


def _at(offset: int) -> float:
    return math.inf if offset == TO_ITS_END else offset
