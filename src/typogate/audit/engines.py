"""Running an audit over partitions: locally on every core, or on a Dask cluster.

Both engines run the same function on the same partitions and merge in partition order,
so they produce identical findings. Everything a partition needs travels with it
(:class:`Settings`); each worker process builds the Guard of a configuration once (a cache
keyed by the whole configuration, so two audits with different configurations in one
process, or on one long-lived Dask worker, never share a judgement), and only deliveries to
suspected typo domains travel back.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from typogate.audit import postfix_log
from typogate.audit.deliveries import Delivery, HoldEnd, PartResult
from typogate.audit.readers import READERS
from typogate.audit.sources import InputProblem, Part, blocks
from typogate.batch import Workers
from typogate.domains import InvalidAddress
from typogate.policy import Config, Guard
from typogate.policy.index_cache import cache_folder
from typogate.vocabulary import Action, AuditFormat


@dataclass(frozen=True)
class Settings:
    """What every worker needs: the configuration (as data) and the CSV column mapping."""

    config: dict[str, Any]
    base_dir: str
    columns: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, config: Config, columns: dict[str, str] | None = None) -> Settings:
        data = config.model_dump(mode="json", by_alias=True, exclude={"base_dir"})
        return cls(data, str(config.base_dir), tuple(sorted((columns or {}).items())))


@lru_cache(maxsize=4)
def _guard(config_json: str, base_dir: str) -> Guard:
    # A cache, not state: the whole configuration is the key.
    import json

    config = Config.from_mapping(json.loads(config_json), base_dir=Path(base_dir))
    return Guard(config, index_cache=cache_folder())  # the worker's own machine's


def _suspect_test(settings: Settings) -> Callable[[str], bool]:
    """Whether a recipient domain is a suspected typo under ``settings``' configuration."""
    import json

    guard = _guard(json.dumps(settings.config, sort_keys=True), settings.base_dir)

    def suspect(domain: str) -> bool:
        try:
            return guard.judge_domain(domain).action is not Action.ALLOW
        except InvalidAddress:
            return False

    return suspect


def run_part(part: Part, settings: Settings) -> PartResult:
    """Read one partition and keep the deliveries to suspected typo domains. Whatever goes
    wrong in one file is a problem of that file in the result, never the end of the run."""
    result = PartResult()
    try:
        READERS[part.format](part, _suspect_test(settings), result, dict(settings.columns))
    except Exception as error:  # reported with the file's name; the run goes on
        result.stopped(part.path, f"stopped reading: {type(error).__name__}: {error}")
    return result


def senders_in(part: Part, queue_ids: frozenset[str]) -> dict[str, str]:
    """Second pass: the senders of queue ids whose from= line was in another partition."""
    if part.format is not AuditFormat.POSTFIX or not queue_ids:
        return {}
    try:
        return postfix_log.find_senders(blocks(part), queue_ids)
    except (OSError, EOFError, zlib.error):  # said in the first pass
        return {}


@dataclass
class Outcome:
    """The merged result of every partition."""

    parts: int = 0
    lines: int = 0
    messages: int = 0
    deliveries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    domains: dict[str, int] = field(default_factory=dict)
    suspects: list[Delivery] = field(default_factory=list)
    hold_ends: dict[str, HoldEnd] = field(default_factory=dict)
    malformed: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)


def merge(parts: list[Part], results: list[PartResult]) -> Outcome:
    """Add the partitions up in order; make line numbers absolute within each file."""
    outcome = Outcome(parts=len(parts))
    lines_before: dict[str, int] = {}
    for part, result in zip(parts, results, strict=True):
        offset = lines_before.get(part.path, 0)
        lines_before[part.path] = offset + result.lines
        outcome.lines += result.lines
        outcome.messages += result.messages
        outcome.deliveries += result.deliveries
        for status, count in result.by_status.items():
            outcome.by_status[status] = outcome.by_status.get(status, 0) + count
        for domain, count in result.domains.items():
            outcome.domains[domain] = outcome.domains.get(domain, 0) + count
        shift = offset if part.format is AuditFormat.POSTFIX else 0
        outcome.suspects.extend(replace(d, line=d.line + shift) for d in result.suspects)
        outcome.hold_ends.update(result.hold_ends)
        outcome.problems.extend(InputProblem(path, why) for path, why in result.problems)
        outcome.malformed += result.malformed
        for source, line, why in result.malformed_examples:
            if len(outcome.malformed_examples) < 50:
                outcome.malformed_examples.append(f"{source}:{line + shift}: {why}")
    return outcome


def fill_senders(outcome: Outcome, found: Iterable[dict[str, str]]) -> None:
    senders: dict[str, str] = {}
    for batch in found:
        senders.update(batch)
    outcome.suspects = [
        replace(d, sender=senders.get(d.queue_id, "")) if not d.sender and d.queue_id else d
        for d in outcome.suspects
    ]


def missing_senders(outcome: Outcome) -> frozenset[str]:
    return frozenset(d.queue_id for d in outcome.suspects if not d.sender and d.queue_id)


def run(
    parts: list[Part], settings: Settings, workers: Workers, progress: Callable[[Part], None]
) -> Outcome:
    """Every partition on ``workers``, then the senders whose from= line sat in another
    partition (a second pass, over the partitions again)."""
    outcome = merge(parts, workers.map(run_part, parts, progress, settings=settings))
    wanted = missing_senders(outcome)
    if wanted:
        fill_senders(outcome, workers.map(senders_in, parts, queue_ids=wanted))
    return outcome
