"""How much has already leaked: readers for mail logs and mailboxes, batch evaluation
(locally or on Dask), and reports. Imports policy and domains; no adapter imports it.

>>> from typogate import Config
>>> from typogate.audit import run, write_report
>>> audit = run([Path("/var/log/mail.log")], Config.load("typogate.toml"))   # doctest: +SKIP
>>> audit.leaks, write_report(audit, Path("leak-report/"))                  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typogate import batch
from typogate.audit.engines import Outcome, Settings
from typogate.audit.engines import run as run_parts
from typogate.audit.report import Finding, findings, write
from typogate.audit.sources import PART_BYTES, AuditInputError, InputProblem, Part, survey
from typogate.config import Config
from typogate.policy import Guard
from typogate.policy.index_cache import cache_folder
from typogate.vocabulary import AuditFormat, Engine

__all__ = ["Audit", "AuditInputError", "InputProblem", "run", "write_report"]


@dataclass(frozen=True)
class Audit:
    """What one audit found: the merged counts, the findings, and how it ran."""

    outcome: Outcome
    findings: list[Finding]
    engine: Engine
    seconds: float
    inputs: list[Path]
    problems: list[InputProblem]  # paths not read, or not read to their end, and why

    @property
    def leaks(self) -> int:
        """Findings that were delivered: mail that reached a suspected typo domain."""
        return sum(1 for finding in self.findings if finding.leaked)


def run(
    paths: list[Path],
    config: Config,
    *,
    format: AuditFormat | None = None,
    engine: Engine = Engine.LOCAL,
    columns: Mapping[str, str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    part_bytes: int = PART_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> Audit:
    """Audit ``paths`` (logs, mailboxes, CSV; ``format`` None sniffs each) under ``config``.

    ``engine`` local uses ``workers`` processes of this machine; dask the cluster at
    ``scheduler`` (tcp://HOST:PORT) or a LocalCluster of ``workers``. ``columns`` maps a
    generic CSV's columns (time=, sender=, recipient=, status=). ``progress`` is called as
    each partition is done, with its bytes and the bytes of the whole input.

    A path that cannot be read (missing, a FIFO or device, a symbolic link loop, an unknown
    format) or that breaks off (a damaged archive, a CSV row too long) is an
    :class:`InputProblem` of the audit, and the others are read. Raises
    :class:`AuditInputError` when no path can be read at all, or a generic CSV has no
    column mapping, and :class:`~typogate.ConfigError` for a bad domain list.
    """
    parts, unread = survey(paths, format, part_bytes)
    if not parts:
        raise AuditInputError("; ".join(map(str, unread)) or "nothing to audit")
    if any(part.format is AuditFormat.CSV for part in parts) and not columns:
        raise AuditInputError("a generic CSV needs its column mapping (--columns)")
    # A bad domain list stops here, not in the workers; they read the index it keeps.
    guard = Guard(config, index_cache=cache_folder())
    settings = Settings.of(config, dict(columns or {}))
    total = sum(part.size for part in parts)

    def report_done(part: Part) -> None:
        if progress is not None:
            progress(part.size, total)

    started = time.perf_counter()
    with batch.workers(engine, workers, scheduler) as running:
        outcome = run_parts(parts, settings, running, report_done)
    seconds = time.perf_counter() - started
    problems = sorted([*unread, *outcome.problems], key=lambda p: p.path)
    return Audit(outcome, findings(outcome, guard), engine, seconds, list(paths), problems)


def write_report(audit: Audit, out: Path) -> dict[str, Any]:
    """Write ``summary.json``, ``findings.csv`` and ``report.html`` into ``out``; returns
    the summary."""
    lines = audit.outcome.lines
    return write(
        out,
        audit.outcome,
        audit.findings,
        {
            "engine": audit.engine.value,
            "seconds": round(audit.seconds, 3),
            "lines_per_second": round(lines / audit.seconds) if audit.seconds else None,
            "inputs": [str(p) for p in audit.inputs],
            "input_errors": [{"path": p.path, "error": p.why} for p in audit.problems],
        },
    )
