"""A Journal in an append-only JSON-lines file: the store until a database is configured.

Verdict events are buffered and written by a background thread (never blocking a verdict;
a full disk is logged, not raised). Held messages are written and fsync'ed before
:meth:`FileJournal.hold` returns, so a hold the MTA was told about is never lost.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from typogate.store.journal import HeldMessage, VerdictEvent
from typogate.vocabulary import Evidence

log = logging.getLogger(__name__)

_FLUSH_SECONDS = 0.5
_MAX_BUFFERED = 100_000  # past this, events are dropped (and counted) rather than memory grown


def _plain(record: VerdictEvent | HeldMessage) -> dict[str, Any]:
    if isinstance(record, HeldMessage):
        data = dataclasses.asdict(record) | {"time": record.time.isoformat(), "kind": "hold"}
        data["written"] = record.written.isoformat() if record.written else None
    else:
        data = record._asdict() | {"time": record.when.isoformat(), "kind": "verdict"}
    return data


class FileJournal:
    """Append verdict events and holds to ``path`` (JSON lines)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.dropped = 0
        self._buffer: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="journal", daemon=True)
        self._writer.start()

    def record(self, event: VerdictEvent) -> None:
        """Queue one verdict event; returns at once."""
        with self._lock:
            if len(self._buffer) >= _MAX_BUFFERED:
                self.dropped += 1
                return
            self._buffer.append(json.dumps(_plain(event)))

    def observe(self, party: str, domain: str, evidence: Evidence) -> None:
        """Queue evidence of a relationship (kind ``evidence``); returns at once."""
        line = {"kind": "evidence", "time": datetime.now(UTC).isoformat(), "party": party}
        line |= {"domain": domain, "evidence": evidence.value}
        with self._lock:
            if len(self._buffer) >= _MAX_BUFFERED:
                self.dropped += 1
                return
            self._buffer.append(json.dumps(line))

    def hold(self, held: HeldMessage) -> None:
        """Write a held message durably (fsync) before returning; raises OSError if it cannot."""
        line = json.dumps(_plain(held)) + "\n"
        with self._lock:
            self._append(line, sync=True)

    def flush(self) -> None:
        """Write every queued event now."""
        with self._lock:
            lines, self._buffer = self._buffer, []
            if not lines:
                return
            try:
                self._append("\n".join(lines) + "\n", sync=False)
            except OSError as error:
                self.dropped += len(lines)
                log.error("journal %s: %d verdict events lost: %s", self.path, len(lines), error)

    def _append(self, text: str, sync: bool) -> None:
        # One write(2) on an O_APPEND descriptor: the policy service and the milter may share
        # the file, and appends from several processes must not interleave.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            data = text.encode("utf-8")
            written = os.write(descriptor, data)
            if written != len(data):
                raise OSError(f"short write to {self.path}")
            if sync:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)

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
