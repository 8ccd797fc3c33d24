"""The readers of mail history, one per format, behind one protocol.

A reader takes one partition of the input and adds what it read to a
:class:`~typogate.audit.deliveries.PartResult`: lines, messages, deliveries, the recipient
domains, and the deliveries to domains the ``suspect`` test flags. A file that breaks off
(a damaged gzip, a read error) ends its partition with a problem in the result; what was
read before it counts. A new format is a module with a reader and one line in
:data:`READERS`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from typogate.audit import mailboxes, postfix_log, tracking_csv
from typogate.audit.deliveries import PartResult
from typogate.audit.sources import Part, blocks
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
    try:
        postfix_log.read(blocks(part), part.path, part.year, part.month, suspect, result)
    except (OSError, EOFError, zlib.error) as error:
        where = f"after line {result.lines:,}" if part.start == 0 else f"after byte {part.start:,}"
        result.stopped(part.path, f"{_damage(error)} {where}; read no further")


def _damage(error: BaseException) -> str:
    """What broke a read off, in words."""
    if isinstance(error, EOFError):
        return "the compressed file is cut short"
    if isinstance(error, zlib.error) or "gzip" in str(error).lower():
        return f"the compressed file is damaged ({error})"
    return f"cannot read on: {error}"


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
