"""What a start learned from every relationship, kept for the next start.

Learning weighs each of the organisation's correspondent domains: a verdict for each, and
for one written to by a single sender a search of that sender's other correspondents. On a
large store that is most of a start (tens of seconds for a quarter of a million
relationships), which Postfix waits out. The same code, configuration, lists and rules
reach the same result from the same evidence, so a start keeps its result (the learned
set) together with the evidence it weighed, under a key made of those four. A restart
with the same key takes the set, and weighs again only the domains whose evidence changed
since, as a running process weighs what other processes stored (``Runtime.watch``).

A set is taken for a day (:data:`MAX_AGE`): evidence fades while nothing changes, which
only a learning from every relationship weighs again. A running gateway learns from every
relationship again once what it judges with is half that old (:data:`RELEARN_AGE`), and
keeps the result, so a restart finds a set it can take as long as one gateway ran.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntFlag
from functools import cache
from pathlib import Path

from typogate.config import Config, Rule

# A learned set older than this is not taken: one start a day learns from everything. At
# the default half-life (180 days) a day's fading is 0.4% of the evidence.
MAX_AGE = 86400.0
# A running gateway learns from every relationship again, beside the Guard in use, once
# what it judges with is this old: half of MAX_AGE, so the set it keeps is always one the
# next start takes, whenever that start comes.
RELEARN_AGE = MAX_AGE / 2
# Sections that cannot change a verdict, and hold secrets and addresses that have no
# place in a key kept in the database; every other section is part of the key, so a
# section added later counts until it is listed here.
_NOT_DECIDING = ("store", "web", "release", "sink")
# The code that decides: the error model and the index, the judge and the learning.
_DECIDING_CODE = (Path(__file__).parent, Path(__file__).parent.parent / "domains")


class Standing(IntFlag):
    """How a correspondent domain stood when the set was kept."""

    LEARNED = 1  # a known correspondent
    FROM_DELIVERIES = 2  # learned from deliveries alone (a later twin may take it back)
    RULED = 4  # learned because an allow rule let mail go to it


@dataclass(frozen=True, slots=True)
class LearnedSet:
    """Each of the organisation's correspondent domains (Unicode form) with the evidence
    weighed (deliveries, mail received, releases) and how it stood (a :class:`Standing`,
    as its int: a restart tests it for every domain)."""

    domains: dict[str, tuple[int, int, int, int]]

    def to_json(self) -> str:
        """The set as the store keeps it."""
        return json.dumps(self.domains, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LearnedSet:
        """Read a set kept by :meth:`to_json`; raises ``ValueError`` for anything else."""
        try:
            kept = json.loads(text)
            domains = {
                domain: (sent, received, released, standing)
                for domain, (sent, received, released, standing) in kept.items()
            }
            # One pass over every number, in C: a damaged row must not teach a domain.
            if not all(type(number) is int for entry in domains.values() for number in entry):
                raise ValueError("a count or standing that is no whole number")
        except (AttributeError, TypeError, ValueError) as error:  # JSONDecodeError too
            raise ValueError(f"not a learned set: {error}") from None
        return cls(domains)


def learning_key(config: Config, listed: Iterable[str], rules: list[Rule]) -> str:
    """What a learned set depends on, as a SHA-256: the deciding code (:func:`code_digest`),
    the configuration's deciding
    sections, the domains the lists gave (a list file's content, not only its name), and
    the rules in force."""
    digest = hashlib.sha256(code_digest())
    deciding = config.model_dump(mode="json", exclude=set(_NOT_DECIDING))
    digest.update(json.dumps(deciding, sort_keys=True).encode())
    digest.update("\n".join(listed).encode())
    digest.update(json.dumps([rule.model_dump(mode="json") for rule in rules]).encode())
    return digest.hexdigest()


@cache
def code_digest() -> bytes:
    """A SHA-256 of the code that decides (``policy/`` and ``domains/``, with the built-in
    lists): its files, since in a working tree the version does not change with the code.
    Read once a process: the index's key and the learned set's both take it at each start
    and reload, and files changed since (an upgrade not yet restarted) are not the code
    that runs here."""
    digest = hashlib.sha256()
    for folder in _DECIDING_CODE:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".txt"):
                digest.update(path.relative_to(folder.parent).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.digest()
