"""What to read: checking each path, sniffing its format, and cutting the input into
partitions that are read in bounded blocks.

A partition is a byte range of a plain log file (cut at line ends when read), a whole
compressed file, or a whole mailbox/CSV file; partitions are what the engines spread over
cores or a Dask cluster, so ten years of logs from many servers scale out. Whatever a
partition holds, it is read a block at a time: a gzip file that expands a thousandfold or a
line with no end costs the same memory as an ordinary log.

A path that cannot be audited (missing, a symbolic link loop, a FIFO or device, unreadable,
an unknown format) is an :class:`InputProblem`: named in the report, while the other paths
are read.
"""

from __future__ import annotations

import datetime
import errno
import gzip
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from typogate.errors import TypogateError
from typogate.vocabulary import AuditFormat

PART_BYTES = 32 * 1024 * 1024
# What is read at a time. A log line longer than MAX_LINE is not a mail log line (Postfix
# writes a few hundred bytes, syslog daemons cut at 8 KiB to 64 KiB): it is skipped and
# reported, so no line can make a reader hold more than BLOCK_BYTES + MAX_LINE.
BLOCK_BYTES = 4 * 1024 * 1024
MAX_LINE = 1024 * 1024


class AuditInputError(TypogateError, ValueError):
    """A path that cannot be audited (missing, unreadable, unknown format)."""


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A path (or part of one) that could not be read, and why, in a sentence."""

    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"


@dataclass(frozen=True, slots=True)
class Part:
    """One unit of work: ``path`` read as ``format`` from byte ``start`` to ``end`` (of a
    compressed file: of its expanded text)."""

    path: str
    format: AuditFormat
    start: int = 0
    end: int = -1  # -1: to its end (and mailboxes, CSV files: whole)
    year: int = 1970  # for syslog time stamps, which have none: the file's modification year
    month: int = 12  # ... and month: a syslog month after it belongs to the year before
    bytes: int = 1  # how much the part covers on disk, for progress bars

    @property
    def size(self) -> int:
        """Bytes this part covers (for progress bars; at least 1)."""
        return max(1, self.end - self.start if self.end >= 0 else self.bytes)


# Why a path that exists is not a file to read, by its type.
_NOT_A_FILE = {
    stat.S_IFIFO: "a FIFO (named pipe), not a file: it would be read for ever",
    stat.S_IFCHR: "a character device, not a file: it would be read for ever",
    stat.S_IFBLK: "a block device, not a file",
    stat.S_IFSOCK: "a socket, not a file",
}


def _checked(path: Path) -> os.stat_result:
    """The status of ``path`` (following symbolic links), or :class:`AuditInputError`
    saying in words what is wrong with it."""
    try:
        found = os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise AuditInputError(f"{path}: a loop of symbolic links") from None
        if error.errno == errno.ENOENT and os.path.lexists(path):
            target = os.readlink(path) if os.path.islink(path) else "?"
            raise AuditInputError(
                f"{path}: a symbolic link to {target}, which does not exist"
            ) from None
        if error.errno == errno.ENOENT:
            raise AuditInputError(f"{path}: no such file or folder") from None
        raise AuditInputError(f"{path}: cannot read: {error.strerror}") from None
    kind = stat.S_IFMT(found.st_mode)
    if kind in _NOT_A_FILE:
        raise AuditInputError(f"{path}: {_NOT_A_FILE[kind]}")
    if kind == stat.S_IFDIR:
        return found
    if not os.access(path, os.R_OK):
        raise AuditInputError(f"{path}: cannot read: permission denied")
    return found


def _head(path: Path, size: int = 8192) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(size)
    except (OSError, EOFError) as error:
        raise AuditInputError(f"{path}: cannot read: {error}") from None


def sniff(path: Path) -> AuditFormat:
    """The format of ``path`` from its name and first bytes."""
    if path.is_dir():
        if all((path / sub).is_dir() for sub in ("cur", "new")):
            return AuditFormat.MAILDIR
        raise AuditInputError(f"{path}: a folder that is not a Maildir (no cur/ and new/)")
    if path.suffix.lower() == ".eml":
        return AuditFormat.EML
    head = _head(path)
    if head.startswith(b"From "):
        return AuditFormat.MBOX
    if b"postfix/" in head:
        return AuditFormat.POSTFIX
    first = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 2)
    header = first[1] if first and first[0].startswith(b"#TYPE") and len(first) > 1 else first[0]
    if b"EventId" in header and b"Recipients" in header:
        return AuditFormat.EXCHANGE
    if b"," in header:
        return AuditFormat.CSV
    if b"\nSubject:" in head or head.startswith((b"Received:", b"Return-Path:", b"Date:")):
        return AuditFormat.EML
    raise AuditInputError(f"{path}: cannot tell its format; give --format")


def first_line(path: Path) -> bytes | None:
    """The first whole line of a file (expanded, for .gz), which names a log whatever it
    is renamed to or compressed into; None without one in its first 8 KiB."""
    head = _head(path)
    end = head.find(b"\n")
    return head[: end + 1] if end >= 0 else None


def _last_line_end(path: Path, size: int) -> int:
    """Where the last whole line of the file's first ``size`` bytes ends: a line still
    being written is left for later. Past ``MAX_LINE`` without a line end, ``size``: the
    line is too long to be a log line, and the reader reports it."""
    with open(path, "rb") as handle:
        start = max(0, size - MAX_LINE)
        handle.seek(start)
        tail = handle.read(size - start)
    cut = tail.rfind(b"\n")
    if cut < 0:
        return size if size - start >= MAX_LINE else 0
    return start + cut + 1


def survey(
    paths: list[Path],
    format: AuditFormat | None = None,
    part_bytes: int = PART_BYTES,
    *,
    whole_lines: bool = False,
) -> tuple[list[Part], list[InputProblem]]:
    """Every partition of every path that can be read, in a stable order (files sorted,
    ranges in order), and a problem for each path that cannot. ``format`` None sniffs
    each path's. With ``whole_lines``, a plain log ends at its last line end: a line
    still being written is read by the next run."""
    parts: list[Part] = []
    problems: list[InputProblem] = []
    for path in sorted(paths, key=str):
        try:
            found = _checked(path)
            kind = sniff(path) if format is None else format
        except AuditInputError as error:
            problems.append(InputProblem(str(path), str(error).removeprefix(f"{path}: ")))
            continue
        written = datetime.datetime.fromtimestamp(found.st_mtime)
        size = found.st_size if stat.S_ISREG(found.st_mode) else 0
        common = {"year": written.year, "month": written.month}
        if kind is AuditFormat.POSTFIX and path.suffix != ".gz":
            if whole_lines and size:
                size = _last_line_end(path, size)
            # Up to the size seen now: a log that grows while it is read ends where it was.
            for start in range(0, size, part_bytes) if size else [0]:
                end = min(start + part_bytes, size)
                parts.append(Part(str(path), kind, start, end, bytes=end - start, **common))
        else:
            parts.append(Part(str(path), kind, 0, -1, bytes=size, **common))
    return parts, problems


def plan(
    paths: list[Path],
    format: AuditFormat | None = None,
    part_bytes: int = PART_BYTES,
    *,
    whole_lines: bool = False,
) -> list[Part]:
    """Every partition of every path, as :func:`survey` cuts them; raises
    :class:`AuditInputError` for the first path that cannot be read (for commands that
    need every path, such as ``learn``)."""
    parts, problems = survey(paths, format, part_bytes, whole_lines=whole_lines)
    if problems:
        raise AuditInputError(str(problems[0]))
    return parts


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Gunzipped:
    """The expanded bytes of a gzip file, at most ``size`` per read: however much a block
    of the file expands to, it is handed on in pieces. Unlike :mod:`gzip`, the bytes before
    a cut or damage are handed on before the error (``EOFError``, ``zlib.error``)."""

    def __init__(self, packed: _Readable) -> None:
        self.packed = packed
        self.unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)  # the gzip wrapping
        self.waiting = b""  # compressed bytes read, not yet expanded
        self.started = False

    def read(self, size: int = BLOCK_BYTES, /) -> bytes:
        while True:
            if not self.waiting:
                self.waiting = self.packed.read(BLOCK_BYTES)
                if not self.waiting:
                    if self.started and not self.unpack.eof:
                        raise EOFError("compressed file ended before its end-of-stream marker")
                    return b""
            if self.unpack.eof:  # another member follows (cat a.gz b.gz), or padding
                if not self.waiting.strip(b"\0"):
                    self.waiting = b""
                    continue
                self.unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self.started = True
            expanded = self.unpack.decompress(self.waiting, size)
            self.waiting = self.unpack.unconsumed_tail or self.unpack.unused_data
            if expanded:
                return expanded


class Overlong:
    """Marks a line longer than :data:`MAX_LINE` in :func:`blocks`: skipped, not read."""

    def __init__(self, size: int) -> None:
        self.size = size


def blocks(part: Part, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes | Overlong]:
    """The lines of a postfix partition, a block of whole lines at a time; an
    :class:`Overlong` in place of each line longer than :data:`MAX_LINE`.

    A line crossing a cut belongs to the part where it starts. Raises ``OSError``,
    ``EOFError`` or ``zlib.error`` for a file that breaks off (after the blocks before it).
    """
    path = Path(part.path)
    if path.suffix == ".gz":  # a range of the expanded text: what comes before is passed
        stop = part.end if part.end >= 0 else None
        with open(path, "rb") as packed:
            expanded = _Gunzipped(packed)
            passed, last = 0, b"\n"
            while passed < part.start:
                data = expanded.read(min(block_bytes, part.start - passed))
                if not data:
                    return  # shorter than the range: nothing in it
                passed, last = passed + len(data), data[-1:]
            yield from _whole_lines(expanded, passed, stop, last != b"\n", block_bytes)
        return
    with open(path, "rb") as handle:
        start, stop = part.start, (part.end if part.end >= 0 else None)
        inside = False  # whether ``start`` falls inside a line of the previous part
        if start > 0:
            handle.seek(start - 1)
            inside = handle.read(1) != b"\n"
        handle.seek(start)
        yield from _whole_lines(handle, start, stop, inside, block_bytes)


def _whole_lines(
    handle: _Readable, offset: int, stop: int | None, inside: bool, block_bytes: int
) -> Iterator[bytes | Overlong]:
    """Blocks of the whole lines that start before ``stop`` (None: the end), read from
    ``handle`` whose next byte is at ``offset``. ``inside``: the first bytes finish a line
    of the previous part, which reads (or reports) it."""
    pending = b""  # the start of a line whose end is not read yet; it began at ``offset``
    skipping = inside  # dropping bytes up to the next line end
    skipped: int | None = None  # bytes of an overlong line dropped so far (None: not ours)
    while stop is None or offset < stop or pending or skipped is not None:
        data = handle.read(block_bytes)
        if not data:
            break
        if skipping:
            end = data.find(b"\n")
            if end < 0:
                offset += len(data)
                skipped = None if skipped is None else skipped + len(data)
                continue
            offset += end + 1
            data = data[end + 1 :]
            if skipped is not None:
                yield Overlong(skipped + end)
            skipping, skipped = False, None
            if stop is not None and offset >= stop:
                return
        buffer = pending + data if pending else data
        cut = buffer.rfind(b"\n") + 1
        done = False
        if stop is not None and offset + len(buffer) >= stop:
            # The last line of this part is the one holding byte stop - 1.
            last = buffer.find(b"\n", max(stop - offset - 1, 0))
            if last >= 0:
                cut, done = last + 1, True
        if cut:
            yield from _without_overlong(buffer[:cut])
            offset += cut
            pending = buffer[cut:]
        else:
            pending = buffer
        if done:
            return
        if len(pending) > MAX_LINE:
            skipping, skipped = True, len(pending)
            offset += len(pending)
            pending = b""
    if skipped is not None:
        yield Overlong(skipped)  # the file ended inside it
    elif pending:
        yield from _without_overlong(pending)  # the last line, without its line end


def _without_overlong(block: bytes) -> Iterator[bytes | Overlong]:
    """``block`` with an :class:`Overlong` in place of each line longer than ``MAX_LINE``.

    A line that long holds a whole aligned window of ``MAX_LINE // 2`` bytes without a line
    end, so only windows are searched: a few ``find`` calls per block of ordinary lines.
    """
    window = MAX_LINE // 2
    done = 0  # what is yielded already
    position = 0
    while position < len(block):
        if block.find(b"\n", position, position + window) >= 0:
            position += window
            continue
        start = block.rfind(b"\n", 0, position) + 1
        end = block.find(b"\n", position + window)
        end = len(block) if end < 0 else end
        if end - start > MAX_LINE:
            if start > done:
                yield block[done:start]
            yield Overlong(end - start)
            done = end + 1
        position = end + 1
    if done < len(block):
        yield block[done:]
