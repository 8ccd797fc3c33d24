"""What to read: sniffing each path's format, and cutting the input into partitions.

A partition is a byte range of a plain log file (cut at line ends when read), a whole
compressed file, or a whole mailbox/CSV file; partitions are what the engines spread over
cores or a Dask cluster, so ten years of logs from many servers scale out.
"""

from __future__ import annotations

import datetime
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

from typogate.errors import TypogateError
from typogate.vocabulary import AuditFormat

PART_BYTES = 32 * 1024 * 1024


class AuditInputError(TypogateError, ValueError):
    """A path that cannot be audited (missing, unreadable, unknown format)."""


@dataclass(frozen=True, slots=True)
class Part:
    """One unit of work: ``path`` read as ``format`` from byte ``start`` to ``end``."""

    path: str
    format: AuditFormat
    start: int = 0
    end: int = -1  # -1: the whole file
    year: int = 1970  # for syslog time stamps, which have none: the file's modification year

    @property
    def size(self) -> int:
        """Bytes this part covers (for progress bars; at least 1)."""
        if self.end >= 0:
            return max(1, self.end - self.start)
        return max(1, os.path.getsize(self.path) if os.path.isfile(self.path) else 0)


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


def plan(
    paths: list[Path], format: AuditFormat | None = None, part_bytes: int = PART_BYTES
) -> list[Part]:
    """Every partition of every path, in a stable order (files sorted, ranges in order);
    ``format`` None sniffs each path's."""
    parts: list[Part] = []
    for path in sorted(paths, key=str):
        if not path.exists():
            raise AuditInputError(f"{path}: no such file or folder")
        kind = sniff(path) if format is None else format
        year = datetime.datetime.fromtimestamp(path.stat().st_mtime).year
        size = path.stat().st_size if path.is_file() else 0
        if kind is AuditFormat.POSTFIX and path.suffix != ".gz" and size > part_bytes:
            for start in range(0, size, part_bytes):
                parts.append(Part(str(path), kind, start, min(start + part_bytes, size), year))
        else:
            parts.append(Part(str(path), kind, 0, -1, year))
    return parts


def read_chunk(part: Part) -> bytes:
    """The whole lines of a postfix partition: a line crossing a cut belongs to the part
    where it starts."""
    path = Path(part.path)
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as handle:
            try:
                return handle.read()
            except EOFError:  # a truncated archive: keep what is there
                return b""
    with open(path, "rb") as handle:
        if part.end < 0:
            return handle.read()
        start = part.start
        if start > 0:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                handle.readline()  # the rest of a line that belongs to the previous part
            start = handle.tell()
        handle.seek(start)
        if start >= part.end:
            return b""
        chunk = handle.read(part.end - start)
        if not chunk.endswith(b"\n"):
            chunk += handle.readline()
        return chunk
