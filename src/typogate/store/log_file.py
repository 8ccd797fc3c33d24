"""A Journal in an append-only JSON-lines file: the store until a database is configured.

Verdict events are buffered and written by a background thread (never blocking a verdict;
a full disk is logged, not raised). Held messages are written and fsync'ed before
:meth:`FileJournal.hold` returns, so a hold the MTA was told about is never lost; when that
write fails (a full disk), :meth:`FileJournal.hold` raises and the adapter answers a
temporary failure.

A write cut short (a full disk, a crash) leaves a torn record: a line without its end. The
next record never joins it: every append first ends such a line. A torn record is reported
when a journal is opened, and skipped (and reported) by :func:`read_journal`.

The file is rotated past ``max_bytes``: ``journal.jsonl`` becomes ``journal.jsonl.1``, the
older ones move up to ``.{keep}``, and the oldest is removed, so the journal never takes
more than about ``(keep + 1) * max_bytes`` of disk. Several processes may share it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from typogate.store.journal import HeldMessage, VerdictEvent
from typogate.vocabulary import Evidence

log = logging.getLogger(__name__)

_FLUSH_SECONDS = 0.5
# Past this many bytes waiting for the writer thread, events are dropped (and counted)
# rather than memory grown.
_MAX_BUFFERED_BYTES = 16 * 1024 * 1024
MAX_BYTES = 100 * 1024 * 1024
KEEP = 5


def _plain(record: VerdictEvent | HeldMessage) -> dict[str, Any]:
    if isinstance(record, HeldMessage):
        data = dataclasses.asdict(record) | {"time": record.time.isoformat(), "kind": "hold"}
        data["written"] = record.written.isoformat() if record.written else None
    else:
        data = record._asdict() | {"time": record.when.isoformat(), "kind": "verdict"}
    return data


class FileJournal:
    """Append verdict events and holds to ``path`` (JSON lines), rotated past
    ``max_bytes`` with ``keep`` old files."""

    def __init__(self, path: str | Path, *, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.keep = keep
        self.dropped = 0
        self._buffer: list[str] = []
        self._buffered_bytes = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._report_torn_end()
        self._writer = threading.Thread(target=self._write_loop, name="journal", daemon=True)
        self._writer.start()

    def record(self, event: VerdictEvent) -> None:
        """Queue one verdict event; returns at once."""
        line = json.dumps(_plain(event))
        with self._lock:
            if self._buffered_bytes >= _MAX_BUFFERED_BYTES:
                self.dropped += 1
                return
            self._buffer.append(line)
            self._buffered_bytes += len(line)

    def observe(self, party: str, domain: str, evidence: Evidence) -> None:
        """Queue evidence of a relationship (kind ``evidence``); returns at once."""
        fields = {"kind": "evidence", "time": datetime.now(UTC).isoformat(), "party": party}
        fields |= {"domain": domain, "evidence": evidence.value}
        line = json.dumps(fields)
        with self._lock:
            if self._buffered_bytes >= _MAX_BUFFERED_BYTES:
                self.dropped += 1
                return
            self._buffer.append(line)
            self._buffered_bytes += len(line)

    def hold(self, held: HeldMessage) -> None:
        """Write a held message durably (fsync) before returning; raises OSError if it cannot."""
        line = json.dumps(_plain(held)) + "\n"
        with self._lock:
            self._append(line, sync=True)

    def void_hold(self, hold_id: str, why: str) -> None:
        """Write, durably, that the hold ``hold_id`` holds no message, and ``why``."""
        time = datetime.now(UTC).isoformat()
        line = json.dumps({"kind": "void", "time": time, "hold_id": hold_id, "why": why})
        with self._lock:
            self._append(line + "\n", sync=True)

    def flush(self) -> None:
        """Write every queued event now, in parts of at most a sixteenth of ``max_bytes``
        (each checked for rotation), so no file outgrows ``max_bytes`` by more."""
        with self._lock:
            lines, self._buffer, self._buffered_bytes = self._buffer, [], 0
            part: list[str] = []
            size = 0
            for number, line in enumerate(lines, start=1):
                part.append(line)
                size += len(line) + 1
                if size >= self.max_bytes // 16 or number == len(lines):
                    try:
                        self._append("\n".join(part) + "\n", sync=False)
                    except OSError as error:
                        self.dropped += len(part)
                        log.error(
                            "journal %s: %d verdict events lost: %s", self.path, len(part), error
                        )
                    part, size = [], 0

    def _append(self, text: str, sync: bool) -> None:
        # One write(2) on an O_APPEND descriptor: the policy service and the milter may share
        # the file, and appends from several processes must not interleave.
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            data = text.encode("utf-8")
            size = os.fstat(descriptor).st_size
            if size and os.pread(descriptor, 1, size - 1) != b"\n":
                data = b"\n" + data  # end a torn record first: never glue a record to it
            written = os.write(descriptor, data)
            if written != len(data):
                raise OSError(f"short write to {self.path} ({written} of {len(data)} bytes)")
            if sync:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if size + written > self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        """journal -> journal.1 -> ... -> journal.{keep}; the oldest is removed. Under a lock
        on the folder, and only if the file is still over the size (another process sharing
        the journal may have rotated it just now)."""
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            try:
                if self.path.stat().st_size <= self.max_bytes:
                    return
            except FileNotFoundError:  # rotated by another process, nothing written since
                return
            try:
                for number in range(self.keep - 1, 0, -1):
                    older = _rotated(self.path, number)
                    if older.exists():
                        older.replace(_rotated(self.path, number + 1))
                self.path.replace(_rotated(self.path, 1))
            except OSError as error:
                log.error("journal %s: cannot rotate: %s", self.path, error)
        finally:
            os.close(folder)  # and with it the lock

    def _report_torn_end(self) -> None:
        try:
            with self.path.open("rb") as journal:
                size = journal.seek(0, os.SEEK_END)
                if not size:
                    return
                journal.seek(size - 1)
                if journal.read(1) == b"\n":
                    return
        except FileNotFoundError:
            return
        log.warning(
            "journal %s ends in a torn record (a write cut short: a full disk or a crash); "
            "it is skipped when the journal is read, and the next record starts a new line",
            self.path,
        )

    def close(self) -> None:
        """Flush and stop the writer thread."""
        self._closed = True
        self._wake.set()
        self._writer.join(timeout=5)
        self.flush()

    def _write_loop(self) -> None:
        while not self._closed:
            self._wake.wait(_FLUSH_SECONDS)
            self.flush()


def _rotated(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.{number}")


@dataclasses.dataclass(frozen=True, slots=True)
class TornRecord:
    """A line of a journal file that is not a whole record (a write cut short)."""

    path: Path
    line: int  # 1-based
    text: str  # its start, for people


def read_journal(
    path: str | Path, torn: list[TornRecord] | None = None
) -> Iterator[dict[str, Any]]:
    """Every record of the journal at ``path``, its rotated files first (oldest first).

    A torn record (a write cut short by a full disk or a crash) is skipped, logged, and
    added to ``torn`` when a list is given; the records around it are read as usual.
    """
    journal = Path(path)
    rotated = [p for p in journal.parent.glob(f"{journal.name}.*") if p.suffix[1:].isdigit()]
    rotated.sort(key=lambda p: int(p.suffix[1:]), reverse=True)  # .5 is the oldest
    for file in [*rotated, journal]:
        try:
            lines = file.open("rb")
        except FileNotFoundError:
            continue
        with lines:
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue  # the line end written after a torn record
                try:
                    record = json.loads(raw)
                    if not isinstance(record, dict) or "kind" not in record:
                        raise ValueError("not a journal record")
                except ValueError:
                    shown = raw[:80].decode("utf-8", "replace")
                    log.warning("journal %s: line %d is a torn record, skipped", file, number)
                    if torn is not None:
                        torn.append(TornRecord(file, number, shown))
                    continue
                yield record
