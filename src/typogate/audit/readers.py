"""The readers of mail history, one per format, behind one protocol.

A reader takes one partition of the input and adds what it read to a
:class:`~typogate.audit.deliveries.PartResult`: lines, messages, deliveries, the recipient
domains, and the deliveries to domains the ``suspect`` test flags. A new format is a module
with a reader and one line in :data:`READERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from typogate.audit import mailboxes, postfix_log, tracking_csv
from typogate.audit.deliveries import PartResult
from typogate.audit.sources import Part, read_chunk
from typogate.vocabulary import AuditFormat


class Reader(Protocol):
    """Reads one partition into ``result``; ``columns`` is the CSV column mapping."""

    def __call__(
        self,
        part: Part,
        suspect: Callable[[str], bool],
        result: PartResult,
        columns: Mapping[str, str],
    ) -> None: ...


def _postfix(
    part: Part, suspect: Callable[[str], bool], result: PartResult, columns: Mapping[str, str]
) -> None:
    postfix_log.read(read_chunk(part), part.path, part.year, suspect, result)


def _mailbox(
    part: Part, suspect: Callable[[str], bool], result: PartResult, columns: Mapping[str, str]
) -> None:
    mailboxes.read(Path(part.path), part.format, suspect, result)


def _exchange(
    part: Part, suspect: Callable[[str], bool], result: PartResult, columns: Mapping[str, str]
) -> None:
    tracking_csv.read(Path(part.path), tracking_csv.EXCHANGE_COLUMNS, True, suspect, result)


def _csv(
    part: Part, suspect: Callable[[str], bool], result: PartResult, columns: Mapping[str, str]
) -> None:
    tracking_csv.read(Path(part.path), dict(columns), False, suspect, result)


READERS: dict[AuditFormat, Reader] = {
    AuditFormat.POSTFIX: _postfix,
    AuditFormat.MBOX: _mailbox,
    AuditFormat.MAILDIR: _mailbox,
    AuditFormat.EML: _mailbox,
    AuditFormat.EXCHANGE: _exchange,
    AuditFormat.CSV: _csv,
}
